# Debian packages the tests need (scripts/debian-packages.txt), installed with apt-get when missing.
# Sourced by scripts/test.sh. As root it installs; otherwise it says what is missing and goes on
# (the tests that need a missing program then fail saying which program they need).
_aihubmix_install_system_packages() {
  local list missing=() name cmd
  list="$(dirname "${BASH_SOURCE[0]}")/debian-packages.txt"
  while read -r name cmd _; do
    case "$name" in ""|"#"*) continue ;; esac
    command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || missing+=("$name")
  done <"$list"
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian packages: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "Missing Debian packages (install them as root): ${missing[*]}" >&2
  fi
}
_aihubmix_install_system_packages
