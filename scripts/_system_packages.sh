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

# Azurite (Azure Storage emulator, npm) for the Azure Blob store's tests, pinned, under .tools/ in
# the repository; Node (Debian's nodejs, or one already on PATH) runs it. Skipped without npm.
AZURITE_VERSION=3.37.0
_aihubmix_install_azurite() {
  local dir=.tools/azurite
  [ -x "$dir/node_modules/.bin/azurite-blob" ] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: the Azure Blob tests need Azurite (npm install azurite@$AZURITE_VERSION)" >&2
    return 0
  fi
  echo "Installing Azurite $AZURITE_VERSION with npm..." >&2
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "azurite@$AZURITE_VERSION" >/dev/null
}
_aihubmix_install_azurite
