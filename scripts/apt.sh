# Sourced: `apt_get_install PACKAGE...` installs Debian packages with apt-get, as root or through
# sudo, and fails with a clear message if it can do neither. Callers pass only what is missing.
apt_get_install() {
  [ $# -eq 0 ] && return
  echo "== installing $* (apt-get)"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "$*: missing, and neither root nor sudo to install them" >&2
      return 1
    }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}
