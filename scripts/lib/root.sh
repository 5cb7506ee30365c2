# shellcheck shell=bash
# Sourced by scripts/up, scripts/test and scripts/setup-host, from the checkout's root: what needs
# root is asked for through sudo once, saying why; where sudo is refused, one message names what an
# admin must run, before anything is changed. Root itself runs everything as it is.

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# The variables a command run through sudo keeps (sudo resets the rest): dlworkshop's and the
# tests' settings, the Docker client's, proxies and CA bundles, CI's, pip's.
preserved_env() {
  compgen -e | grep -E '^(DLWORKSHOP_.*|DOCKER_(HOST|CONFIG|CERT_PATH|TLS_VERIFY)|CI|GITHUB_.*|PIP_.*|PYTEST_.*|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|COLUMNS|TERM)$' \
    | paste -sd, - || true
}

# need_root COMMAND REASONS: return when root, or when sudo allows this user (asking for the
# password once, after saying why); otherwise print the one message and exit, nothing changed.
need_root() {
  local command=$1 reasons=$2
  [[ $EUID -eq 0 ]] && return 0
  # Said and granted once for the whole run (scripts/up asks for what scripts/setup-host needs too).
  [[ -n "${DLWORKSHOP_SUDO_ASKED:-}" ]] && sudo -n true 2>/dev/null && return 0
  local refusal
  if ! command -v sudo >/dev/null 2>&1; then
    refusal="sudo is not installed"
  elif refusal=$(sudo -n -v 2>&1) || [[ $refusal == *"password is required"* ]]; then
    # Allowed (without a password, or with one to be typed): say why before sudo does anything.
    say "$command needs root, through sudo (asked once), for: $reasons"
    # sudo prompts on the terminal; with none (a pipe, CI) it cannot, and says so.
    if [[ -z $refusal ]] || { { : </dev/tty; } 2>/dev/null && refusal=$(sudo -v 2>&1); }; then
      export DLWORKSHOP_SUDO_ASKED=1
      keep_sudo_alive
      return 0
    fi
  fi
  refusal=$(printf '%s' "$refusal" | tail -n 1)
  local user
  user=$(id -un)
  {
    printf '\033[1;31merror:\033[0m %s needs root for: %s. You are %s, not root, and sudo refused (%s). Nothing was changed.\n' \
      "$command" "$reasons" "$user" "$refusal"
    # shellcheck disable=SC2016  # the backquotes are the message's, around a command to type
    printf '\033[1mfix:\033[0m ask an admin to run `sudo %s/%s` (what it makes in this checkout stays yours), or to give you sudo rights (`usermod -aG sudo %s`, then log in again)\n' \
      "$PWD" "$command" "$user"
  } >&2
  exit 1
}

# sudo forgets the password after 15 minutes; a first run builds images for longer than that.
keep_sudo_alive() {
  [[ -n "${_sudo_keeper:-}" ]] && return 0
  ( while kill -0 "$$" 2>/dev/null; do sudo -n -v 2>/dev/null || exit 0; sleep 60; done ) \
    </dev/null >/dev/null 2>&1 &
  _sudo_keeper=$!
  trap 'kill "$_sudo_keeper" 2>/dev/null || true' EXIT
}

# A system command as root (apt-get, systemctl, tee into /etc).
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

# A command as root in this checkout; what it creates here goes back to the checkout's owner.
as_root_in_checkout() {
  local runner="$PWD/scripts/lib/as-root-in-checkout"
  if [[ $EUID -eq 0 ]]; then
    "$runner" "$@"
  else
    local keep
    keep=$(preserved_env)
    sudo -n ${keep:+--preserve-env="$keep"} "$runner" "$@"
  fi
}
