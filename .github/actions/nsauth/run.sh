#!/bin/sh
# nsauth in CI: log in to the store with the job's OIDC token, fail clearly when a NetSuite
# login is needed, and hand the job a NetSuite access token without printing it.
#
# Used by the GitHub Action (.github/actions/nsauth/action.yml) and the GitLab CI template
# (ci/gitlab/nsauth.gitlab-ci.yml); docs/ci.md explains both. Input, all from the
# environment:
#   NSAUTH_PROFILE             the nsauth profile (required)
#   NSAUTH_STORE               the store URI, e.g. vault:///secret/nsauth (with VAULT_ADDR)
#   NSAUTH_MIN_REFRESH_WINDOW  fail when the refresh token ends within this (default 72h)
#   NSAUTH_VAULT_AUTH_*        how nsauth logs in to Vault (docs/stores/vault.md); the
#                              method defaults to jwt
#   NSAUTH_CI                  github or gitlab (default: from GITHUB_ACTIONS / GITLAB_CI)
#   NSAUTH_BIN                 the nsauth binary (default: nsauth on PATH)
# GitHub: NETSUITE_ACCESS_TOKEN goes to $GITHUB_ENV (masked first), account-id and rest-url
# to $GITHUB_OUTPUT. GitLab: stdout is `export NETSUITE_ACCESS_TOKEN=...` lines for
# `eval "$(sh run.sh)"`; everything else goes to stderr.
# Exit codes are nsauth's: 3 = a NetSuite login is needed (an error annotation says so).
set -eu


nsauth=${NSAUTH_BIN:-nsauth}
profile=${NSAUTH_PROFILE:-}
window=${NSAUTH_MIN_REFRESH_WINDOW:-72h}
ci=${NSAUTH_CI:-}
if [ -z "$ci" ]; then
    if [ "${GITHUB_ACTIONS:-}" = true ]; then ci=github
    elif [ "${GITLAB_CI:-}" = true ]; then ci=gitlab
    else ci=github
    fi
fi

# An error the CI shows prominently: an annotation on GitHub, a plain line on GitLab.
# Workflow commands end at a newline and decode %XX: escape both.
fail() { # fail CODE TITLE MESSAGE
    if [ "$ci" = github ]; then
        printf '::error title=%s::%s\n' "$2" "$(printf '%s' "$3" | tr '\r\n' '  ' | sed 's/%/%25/g')"
    else
        printf 'ERROR: %s: %s\n' "$2" "$3" >&2
    fi
    exit "$1"
}

[ -n "$profile" ] || fail 2 "nsauth input missing" "set the profile (input profile / NSAUTH_PROFILE)"
[ -n "${NSAUTH_STORE:-}" ] || fail 2 "nsauth input missing" "set the store (input store / NSAUTH_STORE), e.g. vault:///secret/nsauth"
export NSAUTH_PROFILE="$profile"
export NSAUTH_VAULT_AUTH_METHOD="${NSAUTH_VAULT_AUTH_METHOD:-jwt}"
# Never colour: the log is not a terminal.
export NO_COLOR=1

if [ "$NSAUTH_VAULT_AUTH_METHOD" = jwt ] && [ -z "${NSAUTH_VAULT_AUTH_JWT_PATH:-}" ] && [ -z "${NSAUTH_VAULT_AUTH_JWT_ENV:-}" ]; then
    if [ "$ci" = gitlab ]; then
        export NSAUTH_VAULT_AUTH_JWT_ENV=NSAUTH_ID_TOKEN
    elif [ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ] || [ -z "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}" ]; then
        fail 2 "No OIDC token" "the job cannot get an OIDC token: add 'permissions: id-token: write' to the job (or the workflow)"
    fi
fi

# 1. Healthy, and not about to need a login?
set +e
"$nsauth" check --within "$window" >&2
rc=$?
set -e
case $rc in
    0) ;;
    3) fail 3 "NetSuite login needed" "profile $profile needs a NetSuite login, or its refresh token ends within $window; on a workstation run: NSAUTH_STORE=$NSAUTH_STORE nsauth login --profile $profile" ;;
    *) fail "$rc" "nsauth check failed" "nsauth check --profile $profile exited with $rc; see the lines above" ;;
esac

# 2. The token, masked before anything can print it.
json_field() { # json_field KEY < JSON: the string value of KEY (one line, no escapes)
    sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1
}
# `nsauth token --json` prints the token object {"schema": 1, "access_token", "account_id",
# "rest_url", ...} on one line; an nsauth from before that prints the bare token. Both work.
set +e
answer=$("$nsauth" token --json)
rc=$?
set -e
case $answer in
    '{'*) token=$(printf '%s' "$answer" | json_field access_token) ;;
    *) token=$answer answer='' ;;
esac
[ "$rc" -eq 3 ] && fail 3 "NetSuite login needed" "profile $profile needs a NetSuite login; on a workstation run: NSAUTH_STORE=$NSAUTH_STORE nsauth login --profile $profile"
[ "$rc" -eq 0 ] || fail "$rc" "nsauth token failed" "nsauth token --profile $profile exited with $rc; see the lines above"
case $token in
    '' | *[!A-Za-z0-9._~+/=-]*) fail 1 "nsauth token failed" "nsauth printed no usable access token" ;;
esac
[ "$ci" = github ] && printf '::add-mask::%s\n' "$token"

if [ -z "$answer" ]; then
    answer=$("$nsauth" --json profile show "$profile")
fi
account_id=$(printf '%s' "$answer" | json_field account_id)
rest_url=$(printf '%s' "$answer" | json_field rest_url)
[ -n "$rest_url" ] || rest_url=$(printf '%s' "$answer" | json_field rest)

# 3. Hand it over.
if [ "$ci" = github ]; then
    : "${GITHUB_ENV:?GITHUB_ENV is not set: run this in a GitHub Actions step}"
    : "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set: run this in a GitHub Actions step}"
    delimiter="nsauth_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    printf 'NETSUITE_ACCESS_TOKEN<<%s\n%s\n%s\n' "$delimiter" "$token" "$delimiter" >>"$GITHUB_ENV"
    printf 'account-id=%s\nrest-url=%s\n' "$account_id" "$rest_url" >>"$GITHUB_OUTPUT"
else
    shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
    printf 'export NETSUITE_ACCESS_TOKEN=%s\n' "$(shq "$token")"
    printf 'export NETSUITE_ACCOUNT_ID=%s\n' "$(shq "$account_id")"
    printf 'export NETSUITE_REST_URL=%s\n' "$(shq "$rest_url")"
fi
echo "nsauth: NETSUITE_ACCESS_TOKEN is set for profile $profile (account $account_id)" >&2
