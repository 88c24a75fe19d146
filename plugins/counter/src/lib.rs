//! `counter`: a stateful plugcheck plugin of ABI 1.1. Each instance the
//! host makes keeps a 64-bit count of its own and hands it to the next
//! version on hot reload through `save_instance`/`restore_instance`
//! (little-endian u64, the format every later version must read). Its
//! `increment` logs through its call, so the lines carry the caller's
//! trace id, and it registers the wait probe (`selftest.wait`).

use plugcheck_abi::{Call, Error, HostHandle, LogLevel, Plugin, Stateful};

struct Counter {
    count: u64,
}

impl Plugin for Counter {
    fn init(_host: HostHandle) -> Result<Self, Error> {
        Ok(Counter { count: 0 })
    }
}

impl Stateful for Counter {
    fn save_state(&self) -> Vec<u8> {
        self.count.to_le_bytes().to_vec()
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), Error> {
        let bytes: [u8; 8] = state
            .try_into()
            .map_err(|_| Error::new(format!("state is {} bytes, expected 8", state.len())))?;
        self.count = u64::from_le_bytes(bytes);
        Ok(())
    }
}

impl Counter {
    /// Adds the input (a little-endian u64, or 1 when empty) and returns the
    /// new count; says so in a line tagged with the call's trace id.
    fn increment(&mut self, call: &Call, input: &[u8]) -> Result<Vec<u8>, Error> {
        let step = Self::step(input)?;
        self.count = self.count.wrapping_add(step);
        call.log(LogLevel::Debug, &format!("count is {}", self.count));
        Ok(self.count.to_le_bytes().to_vec())
    }

    fn step(input: &[u8]) -> Result<u64, Error> {
        match input.len() {
            0 => Ok(1),
            8 => Ok(u64::from_le_bytes(
                input.try_into().expect("length checked"),
            )),
            n => Err(Error::new(format!("step is {n} bytes, expected 0 or 8"))),
        }
    }

    fn get(&mut self, _input: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.count.to_le_bytes().to_vec())
    }

    /// Counts on a scratch counter, so the live count is left as it was.
    fn selftest(&mut self, _input: &[u8]) -> Result<Vec<u8>, Error> {
        let mut scratch = Counter { count: u64::MAX };
        scratch.count = scratch.count.wrapping_add(Self::step(&[])?);
        scratch.count = scratch.count.wrapping_add(Self::step(&5u64.to_le_bytes())?);
        let restored = {
            let mut copy = Counter { count: 0 };
            copy.restore_state(&scratch.save_state())?;
            copy.count
        };
        if scratch.count != 5 || restored != 5 {
            return Err(Error::new(format!(
                "counted to {}, expected 5",
                scratch.count
            )));
        }
        Ok(Vec::new())
    }
}

plugcheck_abi::export_plugin! {
    name: "counter",
    plugin: Counter,
    stateful: true,
    methods: {
        "increment" => Counter::increment,
        "get" => Counter::get,
        "selftest" => Counter::selftest,
        "selftest.wait" => plugcheck_abi::selftest_wait::<Counter>,
    },
}
