# What the tests need on Debian 12, and the code that installs it: the one list, sourced by
# scripts/test.sh (on the developer's or CI's machine) and run by scripts/fresh-root.sh inside
# a bare Debian root, which proves that the list is complete.
#
# The caller defines `die MESSAGE`, `as_root COMMAND...` and `target_dir` (the venv of the
# SCIM server goes under it).

# System packages, as "proof:debian-package  # which test needs it". The proof is a command
# (on PATH, or in /usr/sbin or /sbin) or, for a package without one, an absolute path (a glob
# for multiarch library folders) that the package installs.
#
# Everything is installed with --no-install-recommends, so Recommends that a test needs are
# listed themselves (samba's AD parts, above all). Installing samba or slapd would start their
# system daemons on Debian; the tests run private instances on their own addresses and ports,
# so ensure_system_packages installs under a policy-rc.d that returns 101.
readonly SYSTEM_PACKAGES=(
    # Building (every test: cargo builds the crate and its C parts).
    "cc:build-essential"       # C compiler and linker for build scripts (ring's C code)
    "pkg-config:pkg-config"    # build scripts that look for system libraries
    "musl-gcc:musl-tools"      # the static x86_64-unknown-linux-musl build (test.sh "Static build")
    "file:file"                # test.sh "Static binary check": the release binary is static
    # The status page in a real browser (tests/e2e/web_browser.rs, the fresh-root smoke test).
    "chromium:chromium"
    "chromedriver:chromium-driver"    # drives it over W3C WebDriver on loopback
    # Samba AD, the lab's two forests (tests/support/lab/samba.rs; every ldap_ad_*, rules_ad_*,
    # nrt_ad_*, lab_samba_* test). samba-ad-dc (docs and a dependency list only) and winbind
    # are not needed: the lab runs `samba` with `server services=ldap`.
    "samba:samba"                                                    # the AD DC daemon
    "samba-tool:samba-common-bin"                                    # domain provision
    "/usr/share/samba/setup/provision_users.ldif:samba-ad-provision" # provisioning templates
    "/usr/lib/*/samba/ldb/samldb.so:samba-dsdb-modules"              # sam.ldb's ldb modules
    "/usr/lib/*/samba/vfs/acl_xattr.so:samba-vfs-modules"            # provision's sysvol ACL step
    "/usr/lib/python3/dist-packages/samba/samdb.py:python3-samba"    # bulk loads (samba_load.py)
    # OpenLDAP (tests/support/lab/slapd.rs; every ldap_slapd_*, nrt_slapd_*, safety_* test).
    "slapd:slapd"               # the server, slapadd for bulk loads
    "ldapsearch:ldap-utils"     # the lab's independent checks: ldapadd/modify/delete/search
    # The whole lab.
    "openssl:openssl"           # the lab CA and server certificates (tests/support/lab/tls.rs)
    "ss:iproute2"               # `ip addr add 127.0.0.2` for the second forest; ss; `ip netns` and veth (agent_island_*)
    # The SCIM test server (tests/support/lab/scim.rs; every scim_*, rules_scim_*, nrt_scim_*).
    "python3:python3"                                   # runs scim2-server
    "/usr/lib/python3.*/ensurepip/__init__.py:python3-venv" # its venv (Debian splits ensurepip out)
    "update-ca-certificates:ca-certificates"            # pip's TLS to PyPI trusts the system roots
    # /metrics and the sample alert rules (tests/e2e/web_metrics.rs runs `promtool check
    # metrics` and `promtool check rules`). The package is the Prometheus server too (about
    # 19 MB to download, 96 MB installed, with a few small JS libraries for its own web UI);
    # policy-rc.d above keeps its daemon from starting. Debian has no lighter package with
    # promtool, and a release binary would be a download outside the package registries.
    "promtool:prometheus"
    # The systemd unit (tests/e2e/systemd_notify.rs runs `systemd-analyze verify` on it).
    # A fresh debootstrap root may lack it; no daemon is started by installing it there.
    "systemd-analyze:systemd"
)

# The SCIM test server, from PyPI into a venv of its own (LAB.md); tests/support finds it
# through BRIDGEHEAD_SCIM_SERVER.
readonly SCIM_SERVER_VERSION=0.8.3

# present PROOF: whether a SYSTEM_PACKAGES proof holds.
present() {
    local proof=$1
    if [[ $proof == /* ]]; then
        compgen -G "$proof" >/dev/null
    else
        command -v "$proof" >/dev/null || [[ -x /usr/sbin/$proof || -x /sbin/$proof ]]
    fi
}

ensure_system_packages() {
    local entry missing=()
    for entry in "${SYSTEM_PACKAGES[@]}"; do
        if ! present "${entry%%:*}"; then
            missing+=("${entry#*:}")
        fi
    done
    if ((${#missing[@]} == 0)); then
        echo "all present: ${SYSTEM_PACKAGES[*]#*:}"
        return
    fi
    echo "missing: ${missing[*]}"
    if ! command -v apt-get >/dev/null; then
        die "no apt-get here; install the equivalents of these Debian packages, then rerun: ${missing[*]}"
    fi
    if ((EUID != 0)) && ! command -v sudo >/dev/null; then
        die "not root and no sudo; as root run: apt-get update && apt-get install -y ${missing[*]}"
    fi
    # Wait for another apt/dpkg (e.g. unattended-upgrades at boot) instead of failing.
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
    as_root "${apt[@]}" update || die "apt-get update failed"
    # A policy-rc.d answering 101 ("forbidden") keeps invoke-rc.d and deb-systemd-invoke from
    # starting samba or slapd during the install (they would hold 127.0.0.1:389 and :636, which
    # the lab's own servers need); one already there (Docker images have one) is left alone,
    # ours is removed afterwards.
    local policy=/usr/sbin/policy-rc.d added_policy=false rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# test.sh: start no services while installing test packages\nexit 101\n' |
            as_root tee "$policy" >/dev/null && as_root chmod 755 "$policy" && added_policy=true ||
            die "cannot write $policy"
    fi
    as_root "${apt[@]}" install -y --no-install-recommends "${missing[@]}" || rc=$?
    if $added_policy; then
        as_root rm -f "$policy" || die "cannot remove $policy; remove it by hand"
    fi
    ((rc == 0)) || die "apt-get install ${missing[*]} failed"
    # Every proof must hold now: a package that installs but does not provide what the tests
    # use (renamed, split) must fail here, by name, not in a test minutes later.
    for entry in "${SYSTEM_PACKAGES[@]}"; do
        present "${entry%%:*}" || die "package ${entry#*:} is installed but ${entry%%:*} is still missing"
    done
}

ensure_scim_server() {
    local venv="$target_dir/scim-venv"
    if "$venv/bin/pip" show scim2-server 2>/dev/null | grep -qx "Version: $SCIM_SERVER_VERSION"; then
        echo "scim2-server $SCIM_SERVER_VERSION: present in $venv"
        return
    fi
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv $venv failed (Debian: python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "scim2-server==$SCIM_SERVER_VERSION" ||
        die "pip install scim2-server==$SCIM_SERVER_VERSION failed (is PyPI reachable?)"
    echo "scim2-server $SCIM_SERVER_VERSION: installed in $venv"
}

# Microsoft's Python SDK for Graph, from PyPI into a venv of its own: tests/e2e/graph_sdk.rs
# runs it against the Graph test double (tests/support/lab/graph) to keep the double honest;
# tests/support finds it through BRIDGEHEAD_GRAPH_SDK_PYTHON. Needs python3 and python3-venv
# (above). Pinned: a new SDK release that rejects the double must fail on purpose, not at
# random.
readonly GRAPH_SDK_PACKAGES=(
    "msgraph-sdk==1.65.0"
    "msgraph-core==1.5.2"
    "azure-identity==1.27.0"
    "msal==1.39.0"
    # msgraph-core 1.5.2 imports `deprecated` (its batch requests) without declaring it; 1.3.1 is
    # the last release for Debian 12's Python 3.11.
    "Deprecated==1.3.1"
)

ensure_graph_sdk() {
    local venv="$target_dir/graph-sdk-venv" want have
    want=$(printf '%s\n' "${GRAPH_SDK_PACKAGES[@]}" | sort)
    have=$("$venv/bin/pip" freeze 2>/dev/null | grep -E '^(msgraph-sdk|msgraph-core|azure-identity|msal|Deprecated)==' | sort)
    if [[ $have == "$want" ]]; then
        echo "Graph SDK: present in $venv"
        return
    fi
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv $venv failed (Debian: python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${GRAPH_SDK_PACKAGES[@]}" ||
        die "pip install ${GRAPH_SDK_PACKAGES[*]} failed (is PyPI reachable?)"
    echo "Graph SDK: installed in $venv (${GRAPH_SDK_PACKAGES[*]})"
}
