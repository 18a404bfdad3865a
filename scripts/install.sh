# Shared by scripts/setup.sh and scripts/setup-bench.sh (sourced, not run): installing only
# what is missing, non-interactively, with sudo when not root.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# install_debian_packages TAG PACKAGE...: apt-get install the packages not installed yet.
install_debian_packages() {
  local tag=$1
  shift
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "$tag: installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # Packages' own service starts are refused in containers; tests and benches start servers themselves.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || {
    for p in "${missing[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || { echo "$tag: $p did not install" >&2; exit 1; }
    done
  }
}

# pip_install TAG PACKAGE: into whichever python3 is first on PATH (Debian's needs
# --break-system-packages). Returns pip's status.
pip_install() {
  echo "$1: installing $2 from PyPI"
  python3 -m pip install --quiet "$2" 2>/dev/null || python3 -m pip install --quiet --break-system-packages "$2"
}

# need_python_module TAG MODULE [PACKAGE]: installs PACKAGE (default MODULE) unless MODULE imports.
need_python_module() {
  python3 -c "import $2" 2>/dev/null && return 0
  pip_install "$1" "${3:-$2}"
  python3 -c "import $2" || { echo "$1: $2 is still missing for $(command -v python3)" >&2; exit 1; }
}
