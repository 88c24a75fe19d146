//! `echo`: the smallest useful plugcheck plugin. Stateless; registers `echo`
//! (returns its input), `reverse`, and the `selftest` the suite calls.
//!
//! Copy this crate to start a plugin: implement [`Plugin`], write methods as
//! `fn(&mut Self, &[u8]) -> Result<Vec<u8>, Error>`, list them in
//! `export_plugin!`.

use plugcheck_abi::{Error, HostHandle, LogLevel, Plugin};

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

    fn reverse(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(input.iter().rev().copied().collect())
    }

    fn selftest(&mut self, _input: &[u8]) -> Result<Vec<u8>, Error> {
        let sample = b"plugcheck";
        if self.echo(sample)? != sample || self.reverse(sample)? != b"kcehcgulp" {
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
    },
}
