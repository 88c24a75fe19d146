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
    println!("echo (in process): {}", String::from_utf8_lossy(&answer.output));

    // One worker serves the counter; eight threads share it.
    std::thread::scope(|threads| {
        for _ in 0..8 {
            threads.spawn(|| {
                for _ in 0..25 {
                    host.call("counter", "increment", b"").unwrap();
                }
            });
        }
    });
    let count = host.call("counter", "get", b"")?.output;
    println!("counter (worker): {}", u64::from_le_bytes(count.try_into().unwrap()));

    let answer = host.call_traced("go-echo", "echo", b"from Go", "request-42")?;
    println!("go-echo (Go worker): {}", String::from_utf8_lossy(&answer.output));

    // Every error says what happened, to which plugin, and what to do.
    if let Err(error) = host.call("echo", "shout", b"") {
        println!("error: {error}");
    }
    Ok(())
}
