# perf (issue #7): benches and the perf report are compiled, not run, in CI.
echo "+ cargo test --test link_cache"
cargo test --test link_cache
echo "+ cargo test --lib link_cache"
cargo test --lib link_cache
echo "+ cargo bench --no-run"
cargo bench --no-run
echo "+ cargo build --release --example perf_report"
cargo build --release --example perf_report
# Optional: a full report run (about 5 s on 2 cores; numbers are noisy on shared CI runners).
if [ -n "${PERF_REPORT:-}" ]; then
  echo "+ cargo run --release --example perf_report"
  cargo run --release --example perf_report
fi
