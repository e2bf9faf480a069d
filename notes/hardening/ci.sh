# Lines for .ci/run (issue #8, hardening). Run from the repository root.
set -euo pipefail

echo "+ python3 -m venv target/pyenv && target/pyenv/bin/pip install pyjwt cryptography"
python3 -m venv target/pyenv
target/pyenv/bin/pip install --quiet pyjwt cryptography
export HANDOFF_PYTHON="$PWD/target/pyenv/bin/python"

echo "+ HANDOFF_PYTHON=$HANDOFF_PYTHON cargo test --test wycheproof --test properties --test interop --test vectors --test limits --test regressions"
cargo test --test wycheproof --test properties --test interop --test vectors --test limits --test regressions

echo "+ cargo run --example gen_vectors -- target/vectors-fresh && diff -r tests/vectors target/vectors-fresh"
cargo run --quiet --example gen_vectors -- target/vectors-fresh
diff -r tests/vectors target/vectors-fresh

echo "+ command -v cargo-fuzz || cargo install cargo-fuzz --locked"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

echo "+ (cd fuzz && cargo fuzz build -s none)"
(cd fuzz && cargo fuzz build -s none)
for target in token envelope ids trust_bundle keys verify; do
    echo "+ (cd fuzz && cargo fuzz run -s none $target <scratch> corpus/$target -- -max_total_time=10)"
    scratch="$(mktemp -d)"
    (cd fuzz && cargo fuzz run -s none "$target" "$scratch" "corpus/$target" -- -max_total_time=10 -print_final_stats=1)
    rm -rf "$scratch"
done
