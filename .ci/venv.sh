# Sourced by tests/run.sh and notebooks/demo.sh: make .venv and install cfai_magic with the
# extras given, building llama-cpp-python portably. Nothing is reinstalled when nothing changed.
# usage: make_venv 'test,local'
make_venv() {
    local extras="$1"
    # llama.cpp built for this CPU (-march=native) uses AMX on recent Xeons, and its AMX matmul
    # crashes on Gemma 3 here; a portable AVX2 build is as fast for a 270M model. What the
    # embedded text model does not use is not built: the llava / mtmd library (images) and
    # llama.cpp's common library (see llama-no-common.cmake).
    local portable="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    local unused="-DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$PWD/.ci/llama-no-common.cmake"
    export CMAKE_ARGS="${CMAKE_ARGS:-$portable $unused}"
    export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    if [ ! -x .venv/bin/python ]; then
        "${PYTHON:-python3}" -m venv .venv
        .venv/bin/python -m pip install -q --upgrade pip
    fi
    if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
        build_llama || return 1
    fi
    # a stamp per set of extras: what was installed, so an unchanged checkout installs nothing
    # (the demo's and the tests' commands run one after the other install once each)
    local stamp=".venv/.cfai-installed-${extras//,/-}" want
    want="$(cat pyproject.toml jupyter-config/jupyter_server_config.d/cfai_magic.json | sha256sum | cut -c1-16)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        local out
        out="$(mktemp "${TMPDIR:-/tmp}/cfai-install.XXXXXX.log")"
        if ! .venv/bin/python -m pip install -q -e ".[$extras]" >"$out" 2>&1; then
            cat "$out"
            rm -f "$out"
            return 1
        fi
        # setuptools' note about editable installs is for its maintainers, not for a user
        awk '/Editable installation/ {skip = 1} !skip {print} /with strategy/ {skip = 0}' "$out"
        rm -f "$out"
        # A wheel install puts jupyter-config/ into the environment's etc/jupyter (the data
        # files in pyproject.toml) and so enables the server extension; an editable install
        # does not install data files, so do what the wheel would.
        mkdir -p .venv/etc/jupyter/jupyter_server_config.d
        cp jupyter-config/jupyter_server_config.d/cfai_magic.json \
            .venv/etc/jupyter/jupyter_server_config.d/
        echo "$want" > "$stamp"
    fi
}

# llama-cpp-python from source (never from pip's wheel cache, which may hold a native build),
# with its progress and the time it has taken, and the build's log kept only if it fails.
build_llama() {
    local log start pct shown="" said=0 status
    log="$(mktemp "${TMPDIR:-/tmp}/llama-build.XXXXXX.log")"
    start=$SECONDS
    echo "building llama-cpp-python from source, once (needs a C++ compiler and CMake;"
    echo "  about 3 minutes on 2 idle cores, longer on a busy machine)"
    .venv/bin/python -m pip install -v --no-cache-dir "llama-cpp-python>=0.3.8" >"$log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        # ninja says [12/345], make says [ 12%]: either way, the share compiled so far
        pct="$(grep -o -E '^ *\[ *[0-9]+(/[0-9]+|%)\]' "$log" 2>/dev/null | tail -1 \
               | awk -F'[][/% ]+' '{ if ($3 != "") print int(100 * $2 / $3); else print $2 }')" \
            || pct=""
        local line="  llama.cpp: ${pct:-0}% compiled · $(( SECONDS - start )) s"
        if [ -t 1 ]; then
            printf '\r%s ' "$line"
        elif [ "${pct:-0}" != "$shown" ] && [ $(( SECONDS - said )) -ge 30 ]; then
            echo "$line"                  # a log: a line at most every 30 s
            shown="${pct:-0}" said=$SECONDS
        fi
        sleep 2
    done
    if wait "$pid"; then status=0; else status=$?; fi
    [ -t 1 ] && echo
    if [ "$status" != 0 ]; then
        echo "the llama-cpp-python build failed (exit $status); the end of its log ($log):"
        tail -25 "$log"
        return 1
    fi
    echo "llama-cpp-python built in $(( SECONDS - start )) s"
    rm -f "$log"
}
