//! `clock_main!(bench)`: a bench's `main`, timing with the clock that
//! `KEYWARD_BENCH_CLOCK` names: `wall` (the default) or, on Linux,
//! `thread-cpu`, the benchmarking thread's CPU time (`thread_cpu.rs`).

macro_rules! clock_main {
    ($bench:ident) => {
        fn main() {
            match std::env::var("KEYWARD_BENCH_CLOCK").as_deref() {
                Err(_) | Ok("" | "wall") => {
                    let mut c = criterion::Criterion::default().configure_from_args();
                    $bench(&mut c);
                    c.final_summary();
                }
                #[cfg(target_os = "linux")]
                Ok("thread-cpu") => {
                    let mut c = criterion::Criterion::default()
                        .with_measurement($crate::support::thread_cpu::ThreadCpuTime)
                        .configure_from_args();
                    $bench(&mut c);
                    c.final_summary();
                }
                Ok(other) => {
                    eprintln!(
                        "KEYWARD_BENCH_CLOCK={other:?}: expected \"wall\" or, on Linux, \"thread-cpu\""
                    );
                    std::process::exit(2);
                }
            }
        }
    };
}
