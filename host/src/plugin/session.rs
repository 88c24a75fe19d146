//! One plugin inside a worker process, driven step by step: load → entry →
//! header → version → descriptor → init. Each step runs at most once and
//! remembers its result, so cases share the work; a case that needs a later
//! step gets the earlier ones for free, or the failure that stopped them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugcheck_abi::{Buf, Descriptor, status};

use crate::inspect::open_error::OpenError;
use crate::inspect::sniff::Sniffed;
use crate::os;
use crate::outcome::Outcome;
use crate::plugin::call_context::{CallSettings, Frame};
use crate::plugin::handshake::{self, Header, StateFunctions, Validated};
use crate::plugin::host::{Host, InCall, Registered};
use crate::plugin::loader::{self, EntryFn, Loaded};
use crate::report::{Detail, PluginInfo};

/// A plugin method's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: i32,
    pub output: Vec<u8>,
}

/// The largest output buffer a method may hand back: far above any real
/// answer, far below a length that is really garbage.
pub(crate) const MAX_METHOD_OUTPUT: usize = 256 << 20;

/// A method's status, its output buffer as handed back, and its `free_buf`.
type Invoked = (i32, Buf, unsafe extern "C" fn(*mut Buf));

/// An output buffer a method handed back that cannot be read as one.
#[derive(Debug)]
pub(crate) struct BrokenBuffer {
    pub status: i32,
    /// What is wrong with it, in words.
    pub problem: String,
}

pub struct Session {
    path: PathBuf,
    loaded: Option<Loaded>,
    entry: Option<EntryFn>,
    header: Option<(*const Descriptor, Header)>,
    validated: Option<Validated>,
    host: Option<Host>,
    /// The live instances, by [`InstanceId`]: what `create_instance` made
    /// (a destroyed one leaves `None`), or the one NULL of a plugin without
    /// instances. The first is made by `init`, and cases use it.
    instances: Vec<Option<InstancePtr>>,
    /// The instances calls asked for by a key of the caller's (a tenant),
    /// made on first use; gone with the instances at shutdown.
    keyed: HashMap<String, InstanceId>,
    /// Hosts of instances that were shut down or failed init. A plugin
    /// thread that outlived its instance may still call `log` through one,
    /// so they live as long as the worker.
    retired_hosts: Vec<Host>,
    /// Duration of the first load and init in this process.
    pub first_load: Option<Duration>,
    pub first_init: Option<Duration>,
    /// Threads of the worker before the plugin was ever loaded.
    pub baseline_threads: u64,
    has_loaded: bool,
    /// What the last sniff of the file found, and the file's size and
    /// modification time then: a reload of an untouched file (repeat-load's
    /// cycles) is not parsed again.
    sniffed_before: Option<(FileStamp, Sniffed)>,
}

/// Instances a session makes by key at most: each holds the plugin's
/// memory, and keys are the application's, not the plugin's, to bound.
const MAX_KEYED_INSTANCES: usize = 4096;

/// An instance of the plugin, as `create_instance` made it (NULL: the one
/// implicit instance of a plugin without instances).
#[derive(Debug, Clone, Copy)]
struct InstancePtr(*mut std::ffi::c_void);

/// Which instance a call goes to: the first, made by `init`, is
/// [`InstanceId::FIRST`]; [`Session::new_instance`] makes more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InstanceId(usize);

impl InstanceId {
    pub(crate) const FIRST: InstanceId = InstanceId(0);
}

/// A file's size and modification time: what tells that it was not
/// touched since it was sniffed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    /// The stamp of a regular file (nothing else is worth remembering).
    fn of(path: &Path) -> Option<FileStamp> {
        let metadata = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        Some(FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}

// SAFETY: a session's raw pointers lead to the plugin's static descriptor
// and to host tables the session owns on the heap; none is tied to the
// thread that made it. Moving a session between threads is sound; using it
// from two at once is prevented by `&mut self` on every step (the reload
// engine keeps each session behind a mutex).
unsafe impl Send for Session {}

impl Session {
    pub fn new(path: PathBuf) -> Session {
        Session {
            baseline_threads: os::thread_count(),
            ..Session::of_shadow(path)
        }
    }

    /// A session for one version inside the reload engine, whose threads
    /// are never judged by it (the `shutdown` case judges the worker's own
    /// session): it skips counting the process's threads, which under Wine
    /// walks every thread of the system and took 10 ms of each reload.
    pub(crate) fn of_shadow(path: PathBuf) -> Session {
        Session {
            path,
            loaded: None,
            entry: None,
            header: None,
            validated: None,
            host: None,
            instances: Vec::new(),
            keyed: HashMap::new(),
            retired_hosts: Vec::new(),
            first_load: None,
            first_init: None,
            baseline_threads: 0,
            has_loaded: false,
            sniffed_before: None,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this process has loaded the plugin yet.
    pub(crate) fn has_loaded(&self) -> bool {
        self.has_loaded
    }

    pub(crate) fn info(&self) -> Option<PluginInfo> {
        self.validated
            .as_ref()
            .map(|validated| validated.info.clone())
    }

    pub(crate) fn loaded(&self) -> Option<&Loaded> {
        self.loaded.as_ref()
    }

    pub fn host(&self) -> Option<&Host> {
        self.host.as_ref()
    }

    /// Opens the library (sniffing it first).
    pub(crate) fn load(&mut self) -> Result<(), Outcome> {
        self.load_known(None)
    }

    /// [`Session::load`], with what a sniff of the same bytes already
    /// found, if anything.
    pub(crate) fn load_known(&mut self, known: Option<Sniffed>) -> Result<(), Outcome> {
        if self.loaded.is_some() {
            return Ok(());
        }
        let stamp = FileStamp::of(&self.path);
        let known = known.or_else(|| match (&self.sniffed_before, &stamp) {
            (Some((before, sniffed)), Some(now)) if before == now => Some(sniffed.clone()),
            _ => None,
        });
        let started = Instant::now();
        // SAFETY: a session lives in a worker process, where a library's
        // initialisers may crash without harm to the harness; or in a
        // process that chose to run the plugin itself (`watch`, the host's
        // `InProcess`, whose `unsafe` entry says so to its caller).
        let result = unsafe { loader::open_known(&self.path, known) };
        let took = started.elapsed();
        let loaded = result.map_err(|error| {
            Outcome::fail(error.to_string()).with_detail(|detail| {
                detail.file_format = error.file_format();
                detail.os_error = error.os_error().cloned();
                if let OpenError::UnresolvedSymbol { symbol, .. } = &error {
                    detail.symbol = Some(symbol.clone());
                }
                if let OpenError::MissingDependency { dependency, .. } = &error {
                    detail.dependency = Some(dependency.clone());
                }
            })
        })?;
        self.first_load.get_or_insert(took);
        self.has_loaded = true;
        self.sniffed_before = stamp.map(|stamp| (stamp, loaded.sniffed().clone()));
        self.loaded = Some(loaded);
        Ok(())
    }

    pub(crate) fn entry(&mut self) -> Result<EntryFn, Outcome> {
        self.load()?;
        if let Some(entry) = self.entry {
            return Ok(entry);
        }
        let loaded = self.loaded.as_ref().expect("loaded above");
        let entry = loaded.entry().map_err(|os_error| {
            let sniffed = loaded.sniffed();
            Outcome::fail(format!(
                "`{}` does not export `{}`, so it is not a plugcheck plugin: {}",
                self.path.display(),
                plugcheck_abi::ENTRY_SYMBOL,
                crate::plugin::advice::missing_entry(sniffed.language, &sniffed.exports)
            ))
            .with_detail(|detail| {
                detail.symbol = Some(plugcheck_abi::ENTRY_SYMBOL.into());
                detail.os_error = Some(os_error);
            })
        })?;
        self.entry = Some(entry);
        Ok(entry)
    }

    pub(crate) fn header(&mut self) -> Result<Header, Outcome> {
        if let Some((_, header)) = self.header {
            return Ok(header);
        }
        let entry = self.entry()?;
        // SAFETY: `entry` is the plugin's `plugcheck_entry`, which takes no
        // arguments; whatever it does happens inside the worker.
        let descriptor = unsafe { entry() };
        // SAFETY: `descriptor` is what the entry returned; `read_header`
        // checks NULL, and a wild pointer crashes only the worker.
        let header = unsafe { handshake::read_header(descriptor) }
            .map_err(|error| Outcome::fail(error.to_string()))?;
        self.header = Some((descriptor, header));
        Ok(header)
    }

    pub(crate) fn check_version(&mut self) -> Result<Header, Outcome> {
        let header = self.header()?;
        match handshake::version_problem(&header) {
            None => Ok(header),
            Some(problem) => Err(Outcome::fail(problem).with_detail(|detail| {
                versions(detail, &header);
            })),
        }
    }

    pub(crate) fn descriptor(&mut self) -> Result<&Validated, Outcome> {
        if self.validated.is_none() {
            let header = self.check_version()?;
            let (descriptor, _) = self.header.expect("read by check_version");
            // SAFETY: the header passed and the version is accepted, so the
            // v1.0 layout applies; `read_descriptor` checks struct_size before
            // reading past the header.
            let validated =
                unsafe { handshake::read_descriptor(descriptor, &header) }.map_err(|problem| {
                    Outcome::fail(problem).with_detail(|detail| versions(detail, &header))
                })?;
            self.validated = Some(validated);
        }
        Ok(self.validated.as_ref().expect("set above"))
    }

    /// How many times `init` ran in this session (each shut-down or failed
    /// instance is retired, the live one is not).
    pub(crate) fn inits(&self) -> usize {
        self.retired_hosts.len() + usize::from(self.host.is_some())
    }

    /// Calls `init` unless the plugin is already initialised, then makes
    /// its first instance (a plugin without instances has its implicit
    /// one).
    pub(crate) fn init(&mut self) -> Result<(), Outcome> {
        if self.host.is_some() {
            return Ok(());
        }
        let init = self.descriptor()?.functions.init;
        let host = Host::new();
        let started = Instant::now();
        // SAFETY: `init` comes from a validated descriptor; the host table
        // lives until this instance is shut down (and beyond: retired hosts
        // are kept).
        let code = unsafe { init(host.table()) };
        self.first_init.get_or_insert(started.elapsed());
        if code != status::OK {
            let logs = host.take_logs();
            host.retire();
            self.retired_hosts.push(host);
            return Err(refused_start(
                "init",
                code,
                logs,
                "a panic in init was caught at the boundary",
                "the plugin refused to start",
            ));
        }
        self.host = Some(host);
        if let Err(failure) = self.new_instance() {
            self.shutdown();
            return Err(failure);
        }
        Ok(())
    }

    /// Makes another instance of the initialised plugin (ABI 1.1's
    /// `create_instance`). A plugin without instances has one, made by
    /// `init`: asking it for a second is a failure that says so.
    pub(crate) fn new_instance(&mut self) -> Result<InstanceId, Outcome> {
        self.init()?;
        let functions = self.descriptor()?.functions;
        let id = InstanceId(self.instances.len());
        let Some(instances) = functions.instances else {
            if self.instances.is_empty() {
                self.instances.push(Some(InstancePtr(std::ptr::null_mut())));
                return Ok(id);
            }
            return Err(Outcome::fail(
                "the plugin makes no instances (create_instance is NULL): it has one, implicit instance",
            ));
        };
        let host = self.host.as_ref().expect("initialised above");
        let mark = host.with_registry(|registry| registry.mark());
        let mut made = std::ptr::null_mut();
        // SAFETY: from the validated descriptor, after `init`; `made` is
        // writable.
        let code = unsafe { (instances.create)(&mut made) };
        if code != status::OK {
            let logs = host.with_registry(|registry| registry.lines_since(mark));
            return Err(refused_start(
                "create_instance",
                code,
                logs,
                "a panic while making an instance was caught at the boundary",
                "the plugin refused to make an instance",
            ));
        }
        let alive = self
            .instances
            .iter()
            .enumerate()
            .find(|(_, live)| live.is_some_and(|live| !made.is_null() && live.0 == made));
        if let Some((other, _)) = alive {
            return Err(Outcome::fail(format!(
                "create_instance handed out instance {other} again, which is still alive: instances share everything they keep; make each instance its own"
            )));
        }
        self.instances.push(Some(InstancePtr(made)));
        Ok(id)
    }

    /// The instance for the caller's `key`, made on first use; the first
    /// instance for none. A plugin without instances serves every key from
    /// its one instance (it has no other).
    pub(crate) fn instance_by_key(&mut self, key: Option<&str>) -> Result<InstanceId, Outcome> {
        let Some(key) = key else {
            return Ok(InstanceId::FIRST);
        };
        self.init()?;
        if !self.makes_instances()? {
            return Ok(InstanceId::FIRST);
        }
        if let Some(id) = self.keyed.get(key) {
            return Ok(*id);
        }
        if self.keyed.len() >= MAX_KEYED_INSTANCES {
            return Err(Outcome::fail(format!(
                "the plugin holds {MAX_KEYED_INSTANCES} instances by key already, the most one worker makes: key calls by a bounded set (tenants, not requests), or reload the plugin, which starts with no key's instance"
            )));
        }
        let id = self.new_instance().map_err(|outcome| {
            Outcome::fail(format!(
                "instance `{}`: {}",
                crate::text::clip(key, 80),
                outcome.reason
            ))
        })?;
        self.keyed.insert(key.to_owned(), id);
        Ok(id)
    }

    /// Whether calls made instances by key here: their state is this
    /// session's only (the first instance's is what state handoff carries).
    pub(crate) fn holds_keyed_instances(&self) -> bool {
        !self.keyed.is_empty()
    }

    /// Ends an instance `new_instance` made (`destroy_instance`); nothing
    /// for one already ended, or the implicit instance.
    pub(crate) fn destroy_instance(&mut self, id: InstanceId) {
        let Some(functions) = self.validated.as_ref().map(|v| v.functions) else {
            return;
        };
        let Some(InstancePtr(instance)) = self.instances.get_mut(id.0).and_then(Option::take)
        else {
            return;
        };
        if let Some(instances) = functions.instances {
            // SAFETY: made by this plugin's `create_instance`, destroyed once
            // (taken out of the list above).
            unsafe { (instances.destroy)(instance) };
        }
    }

    /// Calls `shutdown` if the plugin is initialised, after destroying its
    /// instances (the last made first).
    pub(crate) fn shutdown(&mut self) {
        if self.host.is_some() {
            for id in (0..self.instances.len()).rev() {
                self.destroy_instance(InstanceId(id));
            }
            self.instances.clear();
            self.keyed.clear();
        }
        if let Some(host) = self.host.take() {
            let shutdown = self
                .validated
                .as_ref()
                .expect("an initialised plugin has a validated descriptor")
                .functions
                .shutdown;
            // SAFETY: from the validated descriptor; called once per init.
            unsafe { shutdown() };
            host.retire();
            self.retired_hosts.push(host);
        }
    }

    /// Shuts the plugin down and closes the library. Returns the path it
    /// was loaded from, for a residency check.
    pub(crate) fn close(&mut self) -> Result<Option<PathBuf>, Outcome> {
        self.shutdown();
        self.entry = None;
        self.header = None;
        self.validated = None;
        let Some(loaded) = self.loaded.take() else {
            return Ok(None);
        };
        let path = loaded.path().to_owned();
        loaded.close().map_err(|os_error| {
            Outcome::fail(format!("closing `{}` failed: {os_error}", path.display()))
                .with_detail(|detail| detail.os_error = Some(os_error))
        })?;
        Ok(Some(path))
    }

    /// Calls a registered method with `input`.
    pub(crate) fn call(&mut self, name: &str, input: &[u8]) -> Result<Option<Answer>, Outcome> {
        self.call_with(InstanceId::FIRST, name, input, &CallSettings::default())
    }

    /// Calls a registered method of `instance` with `input`, in a call of
    /// `settings` (what a 1.1 method's context says; a 1.0 method gets
    /// neither).
    pub(crate) fn call_with(
        &mut self,
        instance: InstanceId,
        name: &str,
        input: &[u8],
        settings: &CallSettings,
    ) -> Result<Option<Answer>, Outcome> {
        let Some((status, mut out, free_buf)) = self.invoke(instance, name, input, settings)?
        else {
            return Ok(None);
        };
        // SAFETY: `out` is what the plugin handed back; `free_buf` is its
        // own function for it.
        let output = unsafe { take_buf(&mut out, free_buf) };
        Ok(Some(Answer { status, output }))
    }

    /// Calls method `name` (after init) with `input`: its status, the
    /// buffer it handed back as it is, and its `free_buf`; `None` for a
    /// method it did not register.
    fn invoke(
        &mut self,
        instance: InstanceId,
        name: &str,
        input: &[u8],
        settings: &CallSettings,
    ) -> Result<Option<Invoked>, Outcome> {
        self.init()?;
        let free_buf = self.descriptor()?.functions.free_buf;
        let instance = self.instance(instance)?;
        let host = self.host.as_ref().expect("initialised above");
        let Some(method) = host.lookup(name) else {
            return Ok(None);
        };
        let mut out = Buf::EMPTY;
        let status = match method {
            // SAFETY: `method` was registered by the plugin for this ABI;
            // `input` and `out` are valid for the call.
            Registered::V1_0(method) => unsafe { method(input.as_ptr(), input.len(), &mut out) },
            Registered::V1_1(method) => {
                let frame = Frame::new(host.ctx(), settings);
                let _in_call = InCall::enter();
                // SAFETY: as above; `instance` is live (made by this
                // plugin, not destroyed) and `frame` outlives the call.
                unsafe {
                    method(
                        instance.0,
                        frame.as_ptr(),
                        input.as_ptr(),
                        input.len(),
                        &mut out,
                    )
                }
            }
        };
        Ok(Some((status, out, free_buf)))
    }

    /// The live instance `id`, or why there is none.
    fn instance(&self, id: InstanceId) -> Result<InstancePtr, Outcome> {
        self.instances.get(id.0).copied().flatten().ok_or_else(|| {
            Outcome::fail(format!(
                "instance {} of the plugin is not alive (never made, or destroyed)",
                id.0
            ))
        })
    }

    /// Calls method `name` like [`Session::call`], but trusts nothing of the
    /// buffer the plugin hands back: a NULL pointer with a length, a length
    /// beyond [`MAX_METHOD_OUTPUT`], or bytes that cannot be read are a
    /// [`BrokenBuffer`] instead of a crash in the harness. A broken buffer
    /// is not given back to `free_buf`, which would fault on it.
    pub(crate) fn call_untrusted(
        &mut self,
        name: &str,
        input: &[u8],
    ) -> Result<Option<Result<Answer, BrokenBuffer>>, Outcome> {
        self.call_untrusted_with(InstanceId::FIRST, name, input, &CallSettings::default())
    }

    /// [`Session::call_untrusted`] on `instance`, in a call of `settings`.
    pub(crate) fn call_untrusted_with(
        &mut self,
        instance: InstanceId,
        name: &str,
        input: &[u8],
        settings: &CallSettings,
    ) -> Result<Option<Result<Answer, BrokenBuffer>>, Outcome> {
        let Some((status, mut out, free_buf)) = self.invoke(instance, name, input, settings)?
        else {
            return Ok(None);
        };
        let (ptr, len) = (out.ptr as usize, out.len);
        let broken = |problem: String| Ok(Some(Err(BrokenBuffer { status, problem })));
        if ptr == 0 {
            if len != 0 {
                return broken(format!("a NULL pointer with length {len}"));
            }
            return Ok(Some(Ok(Answer {
                status,
                output: Vec::new(),
            })));
        }
        if len > MAX_METHOD_OUTPUT {
            return broken(format!(
                "length {len}, beyond any sane bound ({} MiB)",
                MAX_METHOD_OUTPUT >> 20
            ));
        }
        let mut output = vec![0; len];
        let readable = os::read_own_memory(ptr, &mut output);
        if readable < len {
            return broken(format!(
                "a pointer ({ptr:#x}) to {len} bytes of which {readable} can be read"
            ));
        }
        // SAFETY: the buffer is readable as handed out; `free_buf` is the
        // plugin's own function for it.
        unsafe { free_buf(&mut out) };
        Ok(Some(Ok(Answer { status, output })))
    }

    /// Calls `save_state` (of the first instance); `None` for a stateless
    /// plugin.
    pub(crate) fn save_state(&mut self) -> Result<Option<Answer>, Outcome> {
        self.save_state_of(InstanceId::FIRST)
    }

    /// Whether the plugin makes instances of its own (ABI 1.1's
    /// `create_instance`), rather than having one implicit instance.
    pub(crate) fn makes_instances(&mut self) -> Result<bool, Outcome> {
        Ok(self.descriptor()?.functions.instances.is_some())
    }

    /// Whether the plugin is of ABI 1.1 or later, with the 1.1 fields
    /// there: its methods may get a call context.
    pub(crate) fn speaks_1_1(&mut self) -> Result<bool, Outcome> {
        let header = self.check_version()?;
        Ok(Descriptor::has_v1_1_fields(
            header.abi_minor,
            header.struct_size,
        ))
    }

    /// How the plugin registered method `name`, once initialised.
    pub(crate) fn registered(&mut self, name: &str) -> Result<Option<Registered>, Outcome> {
        self.init()?;
        Ok(self.host.as_ref().expect("initialised above").lookup(name))
    }

    /// Calls the state saving function of instance `id`; `None` for a
    /// stateless plugin.
    pub(crate) fn save_state_of(&mut self, id: InstanceId) -> Result<Option<Answer>, Outcome> {
        self.init()?;
        let functions = self.descriptor()?.functions;
        let Some(state) = functions.state else {
            return Ok(None);
        };
        let instance = self.instance(id)?;
        let mut out = Buf::EMPTY;
        let status = match state {
            // SAFETY: from the validated descriptor; `out` is writable.
            StateFunctions::V1_0 { save, .. } => unsafe { save(&mut out) },
            // SAFETY: as above; the instance is live.
            StateFunctions::V1_1 { save, .. } => unsafe { save(instance.0, &mut out) },
        };
        // SAFETY: as in `call`.
        let output = unsafe { take_buf(&mut out, functions.free_buf) };
        Ok(Some(Answer { status, output }))
    }

    /// Calls `restore_state` with `state`; `None` for a stateless plugin.
    pub(crate) fn restore_state(&mut self, state: &[u8]) -> Result<Option<Restored>, Outcome> {
        self.init()?;
        let Some(functions) = self.descriptor()?.functions.state else {
            return Ok(None);
        };
        let instance = self.instance(InstanceId::FIRST)?;
        let mark = self
            .host
            .as_ref()
            .map(|host| host.with_registry(|registry| registry.mark()));
        let status = match functions {
            // SAFETY: from the validated descriptor; `state` is valid for
            // reads.
            StateFunctions::V1_0 { restore, .. } => unsafe { restore(state.as_ptr(), state.len()) },
            // SAFETY: as above; the instance is live.
            StateFunctions::V1_1 { restore, .. } => unsafe {
                restore(instance.0, state.as_ptr(), state.len())
            },
        };
        // Read, not taken: the case's detail still gets every line.
        let logged = self
            .host
            .as_ref()
            .zip(mark)
            .map(|(host, mark)| host.with_registry(|registry| registry.lines_since(mark)))
            .unwrap_or_default();
        Ok(Some(Restored { status, logged }))
    }

    /// Detail of the loaded file, for explaining why it stayed resident.
    pub(crate) fn resident_hint(&self) -> Option<String> {
        self.loaded
            .as_ref()
            .map(|loaded| crate::inspect::sniff::resident_hint(loaded.sniffed()))
    }

    /// Whether the library at `path` is still mapped here.
    pub(crate) fn is_resident(path: &Path) -> bool {
        os::library_is_resident(path)
    }
}

/// The failure of a start step (`init`, `create_instance`) that returned
/// `code`: the status, why in words (a panic is said as one), the last line
/// the plugin logged, and its lines in the detail.
fn refused_start(
    step: &str,
    code: i32,
    logs: Vec<crate::report::LogLine>,
    panicked: &str,
    refused: &str,
) -> Outcome {
    let why = if code == status::PANIC {
        panicked
    } else {
        refused
    };
    Outcome::fail(format!(
        "{step} returned {}: {why}{}",
        status_text(code),
        last_log_hint(&logs)
    ))
    .with_detail(|detail| {
        detail.status = Some(code);
        detail.status_name = status::name(code).map(str::to_owned);
        detail.logs = logs;
    })
}

/// Copies a plugin buffer out and gives it back to the plugin.
///
/// # Safety
/// `buf` is `{NULL, 0}` or a buffer the plugin handed out, freeable by
/// `free_buf`.
unsafe fn take_buf(buf: &mut Buf, free_buf: unsafe extern "C" fn(*mut Buf)) -> Vec<u8> {
    if buf.ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: the caller's contract: `ptr` holds `len` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
    // SAFETY: the caller's contract.
    unsafe { free_buf(buf) };
    bytes
}

fn versions(detail: &mut Detail, header: &Header) {
    detail.host_abi = Some(handshake::host_abi());
    detail.plugin_abi = Some(header.abi());
}

/// `-5 (FAILED)`, or the bare number for a plugin-specific code.
pub fn status_text(code: i32) -> String {
    match status::name(code) {
        Some(name) => format!("{code} ({name})"),
        None => code.to_string(),
    }
}

/// What `restore_state` answered, and the lines the plugin logged while it
/// ran: a refusal's own words (the Rust crate logs its `Error` there), which
/// an author needs beside the bare status.
#[derive(Debug, Clone)]
pub(crate) struct Restored {
    pub status: i32,
    pub logged: Vec<crate::report::LogLine>,
}

impl Restored {
    /// `-5 (FAILED); it logged "…"`: the status, with the refusal's words
    /// when the plugin gave any.
    pub(crate) fn refusal(&self) -> String {
        format!(
            "{}{}",
            status_text(self.status),
            last_log_hint(&self.logged)
        )
    }
}

/// `; it logged "…"` with the plugin's last log line, when it left one.
pub(crate) fn last_log_hint(logs: &[crate::report::LogLine]) -> String {
    logs.last()
        .map(|line| format!("; it logged \"{}\"", line.message))
        .unwrap_or_default()
}
