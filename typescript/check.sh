#!/usr/bin/env bash
# The TypeScript clients' types, checked end to end (issue 16):
# 1. `chat --emit-typescript` writes exactly typescript/golden/{orpc,trpc}.ts: a change to the
#    generated text is a diff here (regenerate with UPDATE_GOLDEN=1 and review it);
# 2. those files and programs using them type-check (tsc --strict) against the pinned
#    @orpc/client, @orpc/contract, @trpc/client and @trpc/server, and tRPC's own router for the
#    same procedures types a client identically;
# 3. each program in check/negative fails to type-check, at the line it marks;
# 4. the chat page's bundle, served by the chat, is typescript/web/chat.ts's;
# 5. check/use.ts, compiled, calls every chat procedure through both clients against the chat
#    server and gets the values its types promise;
# 6. the same golden oRPC module under oRPC 2 (typescript/v2/, @orpc/client and @orpc/contract
#    2.0.0-beta.16): its type-checks, the oRPC negative programs, and v2/check/use.ts against the
#    chat's /rpc2.
# Needs Node.js 20+ (npm ci installs the pinned packages from the lockfiles).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "== typescript: $*"; }

say "cargo build -p outer-examples --features typescript --bin chat"
cargo build -q -p outer-examples --features typescript --bin chat
chat=target/debug/chat
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$chat" --emit-typescript "$out"
for file in orpc.ts trpc.ts; do
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
    cp "$out/$file" "typescript/golden/$file"
  elif ! diff -u "typescript/golden/$file" "$out/$file"; then
    echo "typescript/check.sh: the generated $file differs from typescript/golden/$file (above);" >&2
    echo "if the change is meant, regenerate with UPDATE_GOLDEN=1 typescript/check.sh" >&2
    exit 1
  fi
done
say "the generated files equal the golden ones"

cd typescript
say "npm packages (typescript/package-lock.json)"
npm ci --no-audit --no-fund --loglevel=error
say "type-checks"
node check/run-positive.mjs
say "the chat page's bundle (examples/src/chat.js) is typescript/web/chat.ts's"
npx esbuild web/chat.ts --bundle --format=esm --target=es2020 --legal-comments=none \
  --log-level=warning --outfile="$out/chat.js"
if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
  cp "$out/chat.js" ../examples/src/chat.js
elif ! cmp -s "$out/chat.js" ../examples/src/chat.js; then
  echo "typescript/check.sh: examples/src/chat.js is not the bundle of typescript/web/chat.ts;" >&2
  echo "rebuild it with UPDATE_GOLDEN=1 typescript/check.sh" >&2
  exit 1
fi
say "programs that must not type-check"
node check/run-negative.mjs
say "a value serde wrote type-checks against the types generated for it"
sample=check/serde.generated.ts
trap 'rm -rf "$out" "$sample"' EXIT
(cd .. && OUTER_TS_SAMPLE="$PWD/typescript/$sample" cargo test -q -p outer-core --features typescript \
  --lib typescript::tests::a_serialized_value >/dev/null)
npx tsc --noEmit --strict --exactOptionalPropertyTypes --target ES2022 --module ESNext \
  --moduleResolution bundler --skipLibCheck --lib ES2022,DOM "$sample"
say "oRPC 2: npm packages (typescript/v2/package-lock.json)"
(cd v2 && npm ci --no-audit --no-fund --loglevel=error)
say "oRPC 2: type-checks (golden/orpc.ts and v2/check/)"
node check/run-positive.mjs --project v2
say "oRPC 2: programs that must not type-check (check/negative/orpc-*.ts)"
node check/run-negative.mjs --project v2
say "a typed program against the chat"
CHAT_BIN="../$chat" node check/run-use.mjs
say "oRPC 2: a typed program against the chat's /rpc2"
CHAT_BIN="../$chat" node check/run-use.mjs --project v2
