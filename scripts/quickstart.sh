#!/usr/bin/env bash
# lopt-ts quickstart for a fresh machine (Node 20+):
#   1. Fashion-MNIST: installs Debian's dataset-fashion-mnist when apt-get exists, the files are
#      missing and we may (root, or passwordless sudo); otherwise it is skipped (the library then
#      looks in $LOPT_DATA_DIR and ~/.cache/lopt/fashion-mnist, and tries a download).
#   1a. the text corpus of the language-model tasks: Debian's fortunes (BSD), same conditions as 1
#   1b. g++ for the optional native kernels, when no C compiler is installed and we may (as for 1)
#   2. npm ci, npm run build (which also compiles the native kernels)
#   3. the seed experiment: lopt run seed-single-machine for ${LOPT_META_TRAIN_LENGTH:-20} outer
#      steps into runs/seed, then says where the logs, checkpoints and plot are.
#
# Environment: LOPT_META_TRAIN_LENGTH (steps, default 20), LOPT_LOGDIR (default runs/seed),
# LOPT_BACKEND (auto|tensorflow|wasm|cpu), LOPT_SKIP_APT=1 / LOPT_SKIP_NPM_CI=1 to skip steps 1 / npm ci,
# LOPT_QUICKSTART_SETUP_ONLY=1 to stop after step 2 (install and build; no meta-training run).
# Extra arguments are passed to `lopt run` (e.g. --set tasks.0.numTasks=8).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"
STEPS="${LOPT_META_TRAIN_LENGTH:-20}"
LOGDIR="${LOPT_LOGDIR:-runs/seed}"
DATA_DIR=/usr/share/datasets/fashion-mnist
FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

say() { printf '\n==> %s\n' "$*"; }

have_data() {
  local d f
  for d in "${LOPT_DATA_DIR:-}" "${LOPT_DATA_DIR:+$LOPT_DATA_DIR/fashion-mnist}" "$DATA_DIR" "${XDG_CACHE_HOME:-$HOME/.cache}/lopt/fashion-mnist"; do
    [ -n "$d" ] || continue
    local ok=1
    for f in "${FILES[@]}"; do [ -f "$d/$f" ] || ok=0; done
    [ "$ok" = 1 ] && { echo "$d"; return 0; }
  done
  return 1
}

# --- 0. Node --------------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
  echo "quickstart: node is not installed; install Node.js 20 or newer (https://nodejs.org) and rerun" >&2
  exit 1
fi
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$NODE_MAJOR" -lt 20 ]; then
  echo "quickstart: Node.js $(node --version) is too old; lopt-ts needs Node 20 or newer" >&2
  exit 1
fi

# --- 1. Fashion-MNIST -----------------------------------------------------------------------------
say "Fashion-MNIST"
if dir="$(have_data)"; then
  echo "found in $dir"
elif [ "${LOPT_SKIP_APT:-}" = 1 ]; then
  echo "not found; LOPT_SKIP_APT=1, not installing"
elif command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
  fi
  if [ "$SUDO" = none ]; then
    echo "not found, and installing dataset-fashion-mnist needs root; skipping."
    echo "  (as root: apt-get update && apt-get install -y dataset-fashion-mnist, or put the four"
    echo "   *-ubyte.gz files in \$LOPT_DATA_DIR; the run will otherwise try to download them)"
  else
    echo "installing Debian's dataset-fashion-mnist"
    if $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y dataset-fashion-mnist; then
      have_data >/dev/null || echo "warning: dataset-fashion-mnist installed but the files are not in $DATA_DIR" >&2
    else
      echo "warning: could not install dataset-fashion-mnist; the run will try to download the files" >&2
    fi
  fi
else
  echo "not found and no apt-get here; the run will try to download the files (or set LOPT_DATA_DIR)"
fi

# --- 1a. the offline text corpus (language-model tasks; optional) ---------------------------------
if [ ! -f /usr/share/games/fortunes/fortunes ] && [ "${LOPT_SKIP_APT:-}" != 1 ] && command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; }; then
  say "fortunes (text corpus)"
  S=""; [ "$(id -u)" -ne 0 ] && S="sudo -n"
  DEBIAN_FRONTEND=noninteractive $S apt-get install -y fortunes || echo "warning: could not install fortunes; the language-model tasks then need a corpus in \$LOPT_DATA_DIR (see libs/tasks/README.md)" >&2
fi

# --- 1b. a C compiler for the native kernels (optional: without one the tf.js ops run) -------------
if ! command -v cc >/dev/null 2>&1 && ! command -v c++ >/dev/null 2>&1; then
  say "C compiler"
  if [ "${LOPT_SKIP_APT:-}" != 1 ] && command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; }; then
    S=""; [ "$(id -u)" -ne 0 ] && S="sudo -n"
    $S apt-get install -y g++ make python3 || echo "warning: could not install g++; the native kernels will not be built (slower, same results)" >&2
  else
    echo "none found; the native kernels will not be built (slower, same results). Install g++ and make to get them."
  fi
fi

# --- 2. install and build -------------------------------------------------------------------------
if [ "${LOPT_SKIP_NPM_CI:-}" = 1 ]; then
  say "npm ci (skipped: LOPT_SKIP_NPM_CI=1)"
else
  say "npm ci"
  npm ci
fi
say "npm run build"
npm run build

if [ "${LOPT_QUICKSTART_SETUP_ONLY:-}" = 1 ]; then
  say "set up (LOPT_QUICKSTART_SETUP_ONLY=1: no meta-training run); try: npx lopt list"
  exit 0
fi

# --- 3. the seed experiment -----------------------------------------------------------------------
say "lopt run seed-single-machine --steps $STEPS --logdir $LOGDIR"
RESUME=()
if [ -d "$LOGDIR/checkpoints" ] && ls "$LOGDIR/checkpoints" | grep -q '^checkpoint_'; then
  echo "$LOGDIR already holds a run: continuing it (--resume)"
  RESUME=(--resume)
fi
set +e
node apps/runner/dist/cli.js run seed-single-machine --steps "$STEPS" --logdir "$LOGDIR" ${RESUME[@]+"${RESUME[@]}"} "$@"
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ]; then
  echo "quickstart: the run failed (exit $rc)" >&2
  exit "$rc"
fi

case "$LOGDIR" in /*) ABS="$LOGDIR" ;; *) ABS="$ROOT/$LOGDIR" ;; esac
cat <<EOF

==> Where things are
  run directory    $ABS
  config           $LOGDIR/config.json
  TensorBoard      $LOGDIR/events.out.tfevents.*   view: pip install tensorboard && tensorboard --logdir $LOGDIR
  checkpoints      $LOGDIR/checkpoints/checkpoint_<n> (full state), params_<n> (learned optimizer θ)
  loss plot        $LOGDIR/loss.png (and loss.svg)
  continue it      node apps/runner/dist/cli.js run seed-single-machine --logdir $LOGDIR --steps <more> --resume
  other runs       node apps/runner/dist/cli.js list experiments
EOF
exit "$rc"
