# Sourced by tests/run.sh and notebooks/demo.sh: make .venv and install cfai_magic with the
# extras given, building llama-cpp-python portably.
# usage: make_venv 'test,local'
make_venv() {
    local extras="$1"
    # llama.cpp built for this CPU (-march=native) uses AMX on recent Xeons, and its AMX matmul
    # crashes on Gemma 3 here; a portable AVX2 build is as fast for a 270M model.
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF}"
    export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
    [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
        echo "building llama-cpp-python (about 6 minutes on 2 cores, once)…"
        # from source here, never from pip's wheel cache (which may hold a native build)
        .venv/bin/python -m pip install -q --no-cache-dir "llama-cpp-python>=0.3.8"
    fi
    .venv/bin/python -m pip install -q -e ".[$extras]"
    # A wheel install puts jupyter-config/ into the environment's etc/jupyter (the data files
    # in pyproject.toml) and so enables the server extension; an editable install does not
    # install data files, so do what the wheel would.
    mkdir -p .venv/etc/jupyter/jupyter_server_config.d
    cp jupyter-config/jupyter_server_config.d/cfai_magic.json .venv/etc/jupyter/jupyter_server_config.d/
}
