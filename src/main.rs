//! The `bridgehead` binary: only parses arguments and calls into the library.

fn main() -> std::process::ExitCode {
    bridgehead::cli::main()
}
