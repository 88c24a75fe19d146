use plugcheck_host::call::{CallOptions, Cancel};
use plugcheck_host::config::HostConfig;
use plugcheck_host::host::Host;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First thing: this program is also its plugins' worker process.
    plugcheck_host::serve_if_worker();

    let config = HostConfig::read("plugins.toml".as_ref())?;
    // SAFETY: the one plugin configured in process is our own build,
    // admitted by the bytes its report judged.
    let host = unsafe { Host::open_trusting(config)? };

    let answer = host.call("echo", "echo", b"hello")?;
    println!(
        "echo (in process): {}",
        String::from_utf8_lossy(&answer.output)
    );

    // One worker serves the counter, with an instance (a count) per
    // tenant; eight threads share it, four per tenant.
    let tenant = |name: &str| CallOptions {
        instance: Some(name.to_owned()),
        trace: None,
    };
    std::thread::scope(|threads| {
        for name in ["north", "south"] {
            for _ in 0..4 {
                let host = &host;
                threads.spawn(move || {
                    for _ in 0..25 {
                        host.call_with("counter", "increment", b"", &tenant(name), None)
                            .unwrap();
                    }
                });
            }
        }
    });
    for name in ["north", "south"] {
        let count = host
            .call_with("counter", "get", b"", &tenant(name), None)?
            .output;
        println!(
            "counter for {name} (worker): {}",
            u64::from_le_bytes(count.try_into().unwrap())
        );
    }

    // The request's trace id reaches the plugin: the lines it logs during
    // the call carry it (and so does the call's span).
    let traced = CallOptions {
        instance: Some("north".to_owned()),
        trace: Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
    };
    host.call_with("counter", "increment", b"", &traced, None)?;

    // A request given up on: the plugin sees the flag and stops soon; its
    // worker serves on.
    let cancel = Cancel::new();
    let giving_up = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        giving_up.cancel();
    });
    if let Err(error) = host.call_with(
        "counter",
        "selftest.wait",
        b"",
        &CallOptions::default(),
        Some(&cancel),
    ) {
        println!("cancelled: {error}");
    }

    let answer = host.call_traced("go-echo", "echo", b"from Go", "request-42")?;
    println!(
        "go-echo (Go worker): {}",
        String::from_utf8_lossy(&answer.output)
    );

    // Every error says what happened, to which plugin, and what to do.
    if let Err(error) = host.call("echo", "shout", b"") {
        println!("error: {error}");
    }
    Ok(())
}
