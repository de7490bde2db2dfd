//! `bridgehead demo`: writes the bundled company and config into a folder, runs a cycle,
//! says where everything is, and (without `--once`) keeps running on the schedule.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::demo_data::{DemoSize, demo_config, write_company_ldif};
use super::{exit, init_logging, load_config, output, runner_for, serve};
use crate::runner::{CycleOptions, Shutdown};

/// Runs the demo in `dir`.
pub fn run(dir: &Path, once: bool, listen: Option<std::net::SocketAddr>) -> u8 {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create demo folder {}: {e}", dir.display());
        return exit::CONFIG;
    }
    let ldif = dir.join("contoso.ldif");
    let config_path = dir.join("bridgehead.toml");
    // Existing files are kept, so an admin's edits to the demo data survive a restart.
    if !ldif.exists() {
        let written = File::create(&ldif).and_then(|f| {
            let mut w = BufWriter::new(f);
            write_company_ldif(&mut w, DemoSize::DEMO)?;
            std::io::Write::flush(&mut w)
        });
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", ldif.display());
            return exit::CONFIG;
        }
    }
    if !config_path.exists() {
        if let Err(e) = std::fs::write(&config_path, demo_config()) {
            eprintln!("error: cannot write {}: {e}", config_path.display());
            return exit::CONFIG;
        }
    }
    let mut config = match load_config(&config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(addr) = listen {
        config.web.listen = addr;
    }
    let _guard = init_logging(if once {
        None
    } else {
        config.log_dir.as_deref()
    });
    let target = dir.join("directory.ldif");
    let mut runner = match runner_for(config.clone(), Shutdown::default()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let first = runner.cycle(&CycleOptions {
        full: false,
        only: None,
        trigger: "demo".into(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    });
    match first {
        Ok(record) => output::print_summary(&record),
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    }
    drop(runner);
    out!("");
    out!("demo folder:   {}", dir.display());
    out!(
        "source:        {} (edit it, then run a cycle)",
        ldif.display()
    );
    out!("target:        {}", target.display());
    out!("config:        {}", config_path.display());
    out!("state file:    {}", config.state_file.display());
    out!(
        "next cycle:    bridgehead cycle -c {}   |   find someone: bridgehead search -c {} Jürgen",
        config_path.display(),
        config_path.display()
    );
    if once {
        return exit::OK;
    }
    out!(
        "running every {:?}; stop with Ctrl-C",
        config.schedule.interval
    );
    serve(config, true, None)
}
