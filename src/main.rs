//! The `vidx` binary: see [`vidx::cli`].

fn main() -> std::process::ExitCode {
    vidx::cli::main()
}
