//! The `bridgehead` binary: only parses arguments and calls into the library.

/// mimalloc instead of the C library's allocator: decoding and re-encoding records is
/// allocation-heavy (a third of the instructions went to glibc malloc/free in a profile),
/// and the static musl build's own allocator is slower still.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    bridgehead::cli::main()
}
