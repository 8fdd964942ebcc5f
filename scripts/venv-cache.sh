# Sourced by scripts/setup.sh, test-airflow2.sh and test-spark35.sh: their virtualenvs live outside the clone,
# under ${RUNLINK_CACHE:-~/.cache/runlink}/venv-<name>-<hash of what they install>, and the clone links to them.
# CI runs every submission in a fresh clone: building the main venv there took ~13 minutes of a run, the Airflow
# 2.11 and Spark 3.5 ones several more. A venv built once serves every later clone; runlink itself is installed
# editable from the clone that uses it (redone, without dependencies, when another clone used it last).

RUNLINK_CACHE=${RUNLINK_CACHE:-$HOME/.cache/runlink}

# cached_venv LINK NAME HASH PYTHON: LINK (e.g. .venv) becomes a symlink to $RUNLINK_CACHE/venv-NAME-HASH, a venv
# made when missing; the NAME's venvs for other hashes are removed once unused for a day (another checkout, or a
# test still running in one, may be using the previous one). A real directory at LINK (a developer's own venv in
# the tree) is kept as it is.
cached_venv() {
  local link=$1 name=$2 hash=$3 python=$4 dir stale
  if [ -d "$link" ] && [ ! -L "$link" ]; then
    return 0
  fi
  dir=$RUNLINK_CACHE/venv-$name-$hash
  mkdir -p "$RUNLINK_CACHE"
  if [ ! -x "$dir/bin/python" ]; then
    rm -rf "$dir"
    "$python" -m venv "$dir" || return 1
  fi
  ln -sfn "$dir" "$link"
  touch "$dir"
  for stale in "$RUNLINK_CACHE/venv-$name"-*; do
    [ "$stale" = "$dir" ] && continue
    if [ -n "$(find "$stale" -maxdepth 0 -mmin +1440 2>/dev/null)" ]; then rm -rf "$stale"; fi
  done
}

# editable_here VENV: runlink installed editable from this clone, unless it already is
editable_here() {
  local venv=$1 root
  root=$(pwd)
  if [ "$(cat "$venv/.runlink-editable-root" 2>/dev/null)" != "$root" ]; then
    "$venv/bin/pip" install -q --no-deps -e "$root" || return 1
    echo "$root" > "$venv/.runlink-editable-root"
  fi
}
