//! `counter`: a stateful plugcheck plugin. Keeps a 64-bit count and hands it
//! to the next version on hot reload through `save_state`/`restore_state`
//! (little-endian u64, the format every later version must read).

use plugcheck_abi::{Error, HostHandle, Plugin, Stateful};

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
    /// new count.
    fn increment(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        let step = match input.len() {
            0 => 1,
            8 => u64::from_le_bytes(input.try_into().expect("length checked")),
            n => return Err(Error::new(format!("step is {n} bytes, expected 0 or 8"))),
        };
        self.count = self.count.wrapping_add(step);
        Ok(self.count.to_le_bytes().to_vec())
    }

    fn get(&mut self, _input: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.count.to_le_bytes().to_vec())
    }

    /// Counts on a scratch counter, so the live count is left as it was.
    fn selftest(&mut self, _input: &[u8]) -> Result<Vec<u8>, Error> {
        let mut scratch = Counter { count: u64::MAX };
        scratch.increment(&[])?;
        scratch.increment(&5u64.to_le_bytes())?;
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
    },
}
