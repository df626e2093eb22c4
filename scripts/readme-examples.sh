#!/usr/bin/env bash
# Runs the shell examples of README.md (the block between the markers
# <!-- readme-examples:start --> and <!-- readme-examples:end -->) exactly as
# written, with bash -euo pipefail, against a tienda built from this tree and
# started on the default ports (8080-8082) with a fresh data directory. Then
# checks what they printed: every curl call a JSON answer that is no error,
# grpcurl's list, describe, ListOrders and health check their expected output.
#
#   bash scripts/readme-examples.sh              (or: task readme-examples)
#
# grpcurl is installed with go install into .bin/ on first use.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/tienda-server.sh
. scripts/tienda-server.sh

GRPCURL_VERSION=v1.9.4
export PATH="$ROOT/.bin:$PATH"

grpcurl_version() {
  go version -m "$ROOT/.bin/grpcurl" 2>/dev/null |
    awk '$1 == "mod" && $2 == "github.com/fullstorydev/grpcurl" { print $3 }'
}
if [[ $(grpcurl_version) != "$GRPCURL_VERSION" ]]; then
  say "installing grpcurl $GRPCURL_VERSION into .bin/"
  GOBIN="$ROOT/.bin" timeout 600 go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION" ||
    die "go install grpcurl@$GRPCURL_VERSION failed"
fi
command -v curl >/dev/null || die "the examples need curl"

tienda_setup
tienda_ports_free

# The examples, without the ``` fence lines.
start='<!-- readme-examples:start -->' end='<!-- readme-examples:end -->'
[[ $(grep -cxF "$start" README.md) -eq 1 && $(grep -cxF "$end" README.md) -eq 1 ]] ||
  die "README.md needs exactly one line '$start' and one line '$end'"
awk -v start="$start" -v end="$end" '
  $0 == start { on = 1; next }
  $0 == end   { on = 0 }
  on && !/^[[:space:]]*```/
' README.md >"$WORK/examples.sh"
grep -q '[^[:space:]]' "$WORK/examples.sh" || die "no commands between the markers in README.md"

# Each curl and grpcurl call goes through a shim that records its arguments,
# what it printed and its exit status, then hands the output on unchanged:
# the commands run exactly as written, and each one can be checked alone.
mkdir -p "$WORK/shim" "$WORK/calls" "$WORK/run"
for tool in curl grpcurl; do
  real=$(command -v "$tool")
  cat >"$WORK/shim/$tool" <<SHIM
#!/usr/bin/env bash
calls='$WORK/calls'
id=\$(printf '%02d' \$((\$(find "\$calls" -name '*.args' | wc -l) + 1)))
printf '%s\0' '$tool' "\$@" >"\$calls/\$id.args"
set +e -o pipefail
'$real' "\$@" | tee "\$calls/\$id.out"
rc=\${PIPESTATUS[0]}
echo "\$rc" >"\$calls/\$id.rc"
exit "\$rc"
SHIM
  chmod +x "$WORK/shim/$tool"
done

tienda_build
tienda_start

say "running the README examples"
status=0
cd "$WORK/run"
PATH="$WORK/shim:$PATH" run_bounded 120 bash -euo pipefail "$WORK/examples.sh" || status=$?
cd "$ROOT"
echo

# Check every call.
failures=0 checks=0 order_id=
ok() { checks=$((checks + 1)); printf '  ok    %-40s %s\n' "$1" "$2"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); printf '  FAIL  %-40s %s\n' "$1" "$2"; }
has_arg() { local a; for a in "${argv[@]:1}"; do [[ $a == "$1" ]] && return 0; done; return 1; }
declare -A seen=()
echo "checks:"
for args in "$WORK"/calls/*.args; do
  [[ -e $args ]] || break
  id=${args##*/} id=${id%.args}
  mapfile -d '' -t argv <"$args"
  tool=${argv[0]} out="$WORK/calls/$id.out" rc=$(cat "$WORK/calls/$id.rc" 2>/dev/null || echo '?')
  case $tool in
    curl)
      url=
      for a in "${argv[@]}"; do [[ $a == http://* || $a == https://* ]] && { url=$a; break; }; done
      what="curl ${url##*/}"
      seen[curl:${url##*/}]=1
      if [[ $rc != 0 ]]; then bad "$what" "exited with status $rc"
      elif [[ $(head -c1 "$out") != '{' ]]; then bad "$what" "printed no JSON object: $(head -c 200 "$out")"
      elif grep -qF '"code":' "$out"; then bad "$what" "printed an error: $(head -c 300 "$out")"
      else
        case ${url##*/} in
          CreateSession) grep -q '"token":"[^"]' "$out" && ok "$what" "a token" || bad "$what" "no token" ;;
          Checkout)
            order_id=$(sed -n 's/.*"orderId":"\([^"]*\)".*/\1/p' "$out")
            [[ -n $order_id ]] && ok "$what" "order $order_id" || bad "$what" "no orderId" ;;
          *) ok "$what" "JSON, no error" ;;
        esac
      fi ;;
    grpcurl)
      target=${argv[${#argv[@]} - 1]}
      if has_arg list; then
        what="grpcurl list"
      elif has_arg describe; then
        what="grpcurl describe ${target##*.}"
      else
        what="grpcurl ${target##*/}"
      fi
      seen[$what]=1
      if [[ $rc != 0 ]]; then bad "$what" "exited with status $rc"; continue; fi
      case $what in
        "grpcurl list")
          if grep -qx tienda.shop.v1.ShopService "$out" && grep -qx grpc.health.v1.Health "$out"; then
            ok "$what" "tienda.shop.v1.ShopService and grpc.health.v1.Health"
          else bad "$what" "missing tienda.shop.v1.ShopService or grpc.health.v1.Health"; fi ;;
        "grpcurl describe "*)
          method=${target##*.}
          if grep -q "is a method" "$out" && grep -q "rpc $method (" "$out"; then
            ok "$what" "rpc $method"
          else bad "$what" "did not describe the method $target"; fi ;;
        "grpcurl Check")
          grep -q '"status": *"SERVING"' "$out" && ok "$what" "SERVING" || bad "$what" "not SERVING: $(head -c 200 "$out")" ;;
        "grpcurl ListOrders")
          if [[ -n $order_id ]] && grep -q "\"orderId\": *\"$order_id\"" "$out"; then
            ok "$what" "lists order $order_id"
          else bad "$what" "does not list the order from Checkout (${order_id:-none})"; fi ;;
        *) ok "$what" "exit status 0" ;;
      esac ;;
  esac
done
# What the README promises must all have been shown and checked.
for want in curl:CreateSession curl:Checkout "grpcurl list" "grpcurl describe AddToCart" \
  "grpcurl ListOrders" "grpcurl Check"; do
  [[ -n ${seen[$want]:-} ]] || bad "$want" "no such call ran"
done
if [[ $status -ne 0 ]]; then
  bad "the examples block" "stopped with exit status $status$([[ $status -eq 124 ]] && echo ' (timed out)')"
fi

tienda_stop || true
if [[ $failures -gt 0 ]]; then
  say "$failures of $checks checks failed"
  exit 1
fi
say "all $checks checks passed"
