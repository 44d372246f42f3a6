# Included right after llama.cpp's project() (CMAKE_PROJECT_llama.cpp_INCLUDE, set in venv.sh).
# llama-cpp-python loads libllama and libggml only; llama.cpp's common library (and the
# cpp-httplib it brings) serve the command-line tools and the image library, both off here.
# llama-cpp-python forces it on for every platform but WebAssembly, where it turns it off.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama.cpp common library: unused by the Python API" FORCE)
