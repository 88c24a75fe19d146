//! `echo`: the smallest useful plugcheck plugin. Stateless; registers `echo`
//! (returns its input), `reverse` (which logs through its call, so the line
//! carries the caller's trace id), the `selftest` the suite calls, and the
//! wait probe of ABI 1.1 (`selftest.wait`).
//!
//! Copy this crate to start a plugin: implement [`Plugin`], write methods as
//! `fn(&mut Self, &[u8]) -> Result<Vec<u8>, Error>` (or with a `&Call`
//! before the input, to see the call), list them in `export_plugin!`.

use plugcheck_abi::{Call, Error, HostHandle, LogLevel, Plugin};

struct Echo;

impl Plugin for Echo {
    fn init(host: HostHandle) -> Result<Self, Error> {
        host.log(LogLevel::Debug, "echo ready");
        Ok(Echo)
    }
}

impl Echo {
    fn echo(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(input.to_vec())
    }

    fn reverse(&mut self, call: &Call, input: &[u8]) -> Result<Vec<u8>, Error> {
        call.log(
            LogLevel::Trace,
            &format!("reversed {} byte(s)", input.len()),
        );
        Ok(Self::reversed(input))
    }

    fn reversed(input: &[u8]) -> Vec<u8> {
        input.iter().rev().copied().collect()
    }

    fn selftest(&mut self, _input: &[u8]) -> Result<Vec<u8>, Error> {
        let sample = b"plugcheck";
        if self.echo(sample)? != sample || Self::reversed(sample) != b"kcehcgulp" {
            return Err(Error::new("echo or reverse returned the wrong bytes"));
        }
        Ok(Vec::new())
    }
}

plugcheck_abi::export_plugin! {
    name: "echo",
    plugin: Echo,
    methods: {
        "echo" => Echo::echo,
        "reverse" => Echo::reverse,
        "selftest" => Echo::selftest,
        "selftest.wait" => plugcheck_abi::selftest_wait::<Echo>,
    },
}
