#!/bin/sh
# Writes a man page (troff, section 1) for BINARY from its own --help and
# --version, so the page cannot drift from the option table it is printed
# from. `make man` / `make install` run it:  sh tools/gen_man.sh bin/cdc-relay
set -eu
bin=$1
name=$(basename "$bin")
case $name in
cdc-relay) what='relay outbox inserts from a Postgres logical replication slot to Kafka' ;;
orders-api) what='orders HTTP service: each order and its outbox event in one transaction' ;;
*) echo "gen_man.sh: no description for $name" >&2; exit 1 ;;
esac
help=$("$bin" --help)
version=$("$bin" --version)
upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')

# Text as troff shows it: backslashes escaped, a leading . or ' made
# literal, hyphens as \- (so options copy and search as ASCII).
esc() {
    sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

cat <<EOF_MAN
.TH $upper 1 "" "orders-cdc $(echo "$version" | head -1 | cut -d' ' -f2)" "User Commands"
.SH NAME
$name \\- $what
.SH SYNOPSIS
.B $name
[\\fIOPTIONS\\fR]
.SH DESCRIPTION
The text of
.BR "$name \\-\\-help" :
every option with its environment variable and default.
.PP
.nf
EOF_MAN
printf '%s\n' "$help" | esc
cat <<EOF_MAN
.fi
.SH VERSION
.nf
EOF_MAN
printf '%s\n' "$version" | esc
cat <<EOF_MAN
.fi
.SH SEE ALSO
The documentation installed with it (docs/configuration.md, docs/deployment.md,
docs/operations.md), and the systemd units orders-api.service and
cdc-relay.service.
EOF_MAN
