//! The C header and the Rust types must describe the same bytes. A C probe
//! compiled against `include/plugcheck.h` prints every size, offset and
//! constant; the test compares them with what rustc laid out.

use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

use plugcheck_abi::{Buf, CallContext, Descriptor, HostTable, status};

const PROBE: &str = r#"
#include <stdio.h>
#include "plugcheck.h"
#define FIELD(T, F) printf(#T "." #F " %zu\n", offsetof(T, F))
int main(void) {
    printf("sizeof plugcheck_buf %zu\n", sizeof(plugcheck_buf));
    printf("sizeof plugcheck_host %zu\n", sizeof(plugcheck_host));
    printf("sizeof plugcheck_plugin %zu\n", sizeof(plugcheck_plugin));
    printf("sizeof plugcheck_call %zu\n", sizeof(plugcheck_call));
    printf("v1.0 plugcheck_plugin %zu\n", (size_t)PLUGCHECK_PLUGIN_V1_0_SIZE);
    printf("v1.0 plugcheck_host %zu\n", (size_t)PLUGCHECK_HOST_V1_0_SIZE);
    FIELD(plugcheck_buf, ptr); FIELD(plugcheck_buf, len);
    FIELD(plugcheck_host, struct_size); FIELD(plugcheck_host, abi_major);
    FIELD(plugcheck_host, abi_minor); FIELD(plugcheck_host, ctx);
    FIELD(plugcheck_host, log); FIELD(plugcheck_host, register_method);
    FIELD(plugcheck_host, register_method_1_1);
    FIELD(plugcheck_call, struct_size); FIELD(plugcheck_call, reserved);
    FIELD(plugcheck_call, deadline_ns); FIELD(plugcheck_call, cancelled);
    FIELD(plugcheck_call, traceparent); FIELD(plugcheck_call, ctx);
    FIELD(plugcheck_call, now_ns); FIELD(plugcheck_call, log);
    FIELD(plugcheck_plugin, magic); FIELD(plugcheck_plugin, abi_major);
    FIELD(plugcheck_plugin, abi_minor); FIELD(plugcheck_plugin, struct_size);
    FIELD(plugcheck_plugin, name); FIELD(plugcheck_plugin, version);
    FIELD(plugcheck_plugin, toolchain); FIELD(plugcheck_plugin, init);
    FIELD(plugcheck_plugin, shutdown); FIELD(plugcheck_plugin, save_state);
    FIELD(plugcheck_plugin, restore_state); FIELD(plugcheck_plugin, free_buf);
    FIELD(plugcheck_plugin, create_instance); FIELD(plugcheck_plugin, destroy_instance);
    FIELD(plugcheck_plugin, save_instance); FIELD(plugcheck_plugin, restore_instance);
    printf("const PLUGCHECK_ABI_MAJOR %d\n", PLUGCHECK_ABI_MAJOR);
    printf("const PLUGCHECK_ABI_MINOR %d\n", PLUGCHECK_ABI_MINOR);
    printf("const PLUGCHECK_MAGIC %s\n", PLUGCHECK_MAGIC);
    printf("const PLUGCHECK_ENTRY_SYMBOL %s\n", PLUGCHECK_ENTRY_SYMBOL);
    printf("const PLUGCHECK_OK %d\n", PLUGCHECK_OK);
    printf("const PLUGCHECK_ERR_INVALID_ARGUMENT %d\n", PLUGCHECK_ERR_INVALID_ARGUMENT);
    printf("const PLUGCHECK_ERR_DUPLICATE %d\n", PLUGCHECK_ERR_DUPLICATE);
    printf("const PLUGCHECK_ERR_PANIC %d\n", PLUGCHECK_ERR_PANIC);
    printf("const PLUGCHECK_ERR_NOT_INITIALIZED %d\n", PLUGCHECK_ERR_NOT_INITIALIZED);
    printf("const PLUGCHECK_ERR_FAILED %d\n", PLUGCHECK_ERR_FAILED);
    printf("const PLUGCHECK_ERR_CANCELLED %d\n", PLUGCHECK_ERR_CANCELLED);
    printf("const PLUGCHECK_NO_DEADLINE %llu\n", (unsigned long long)PLUGCHECK_NO_DEADLINE);
    return 0;
}
"#;

fn rust_layout() -> Vec<String> {
    let mut lines = vec![
        format!("sizeof plugcheck_buf {}", size_of::<Buf>()),
        format!("sizeof plugcheck_host {}", size_of::<HostTable>()),
        format!("sizeof plugcheck_plugin {}", size_of::<Descriptor>()),
        format!("sizeof plugcheck_call {}", size_of::<CallContext>()),
        format!(
            "v1.0 plugcheck_plugin {}",
            plugcheck_abi::DESCRIPTOR_V1_0_SIZE
        ),
        format!("v1.0 plugcheck_host {}", plugcheck_abi::HOST_V1_0_SIZE),
    ];
    macro_rules! fields {
        ($c:literal, $t:ty, $($f:ident),*) => {
            $(lines.push(format!(concat!($c, ".", stringify!($f), " {}"), offset_of!($t, $f)));)*
        };
    }
    fields!("plugcheck_buf", Buf, ptr, len);
    fields!(
        "plugcheck_host",
        HostTable,
        struct_size,
        abi_major,
        abi_minor,
        ctx,
        log,
        register_method,
        register_method_1_1
    );
    fields!(
        "plugcheck_call",
        CallContext,
        struct_size,
        reserved,
        deadline_ns,
        cancelled,
        traceparent,
        ctx,
        now_ns,
        log
    );
    fields!(
        "plugcheck_plugin",
        Descriptor,
        magic,
        abi_major,
        abi_minor,
        struct_size,
        name,
        version,
        toolchain,
        init,
        shutdown,
        save_state,
        restore_state,
        free_buf,
        create_instance,
        destroy_instance,
        save_instance,
        restore_instance
    );
    let magic = std::str::from_utf8(&plugcheck_abi::MAGIC[..7]).unwrap();
    lines.extend([
        format!("const PLUGCHECK_ABI_MAJOR {}", plugcheck_abi::ABI_MAJOR),
        format!("const PLUGCHECK_ABI_MINOR {}", plugcheck_abi::ABI_MINOR),
        format!("const PLUGCHECK_MAGIC {magic}"),
        format!(
            "const PLUGCHECK_ENTRY_SYMBOL {}",
            plugcheck_abi::ENTRY_SYMBOL
        ),
        format!("const PLUGCHECK_OK {}", status::OK),
        format!(
            "const PLUGCHECK_ERR_INVALID_ARGUMENT {}",
            status::INVALID_ARGUMENT
        ),
        format!("const PLUGCHECK_ERR_DUPLICATE {}", status::DUPLICATE),
        format!("const PLUGCHECK_ERR_PANIC {}", status::PANIC),
        format!(
            "const PLUGCHECK_ERR_NOT_INITIALIZED {}",
            status::NOT_INITIALIZED
        ),
        format!("const PLUGCHECK_ERR_FAILED {}", status::FAILED),
        format!("const PLUGCHECK_ERR_CANCELLED {}", status::CANCELLED),
        format!("const PLUGCHECK_NO_DEADLINE {}", plugcheck_abi::NO_DEADLINE),
    ]);
    lines
}

#[test]
fn c_header_matches_rust_layout() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    assert_eq!(compile_and_run(PROBE, &include), rust_layout());
}

/// A plugin built against the 1.0 header (kept as it was released, in
/// `fixtures/c/abi-1.0/`, where the 1.0 fixtures build against it) lays
/// its structs out as the first bytes of the 1.1 ones: the promise that
/// lets a 1.1 host read it unchanged.
#[test]
fn the_1_0_header_is_a_prefix_of_this_one() {
    const PROBE_1_0: &str = r#"
#include <stdio.h>
#include "plugcheck.h"
#define FIELD(T, F) printf(#T "." #F " %zu\n", offsetof(T, F))
int main(void) {
    printf("v1.0 plugcheck_plugin %zu\n", sizeof(plugcheck_plugin));
    printf("v1.0 plugcheck_host %zu\n", sizeof(plugcheck_host));
    FIELD(plugcheck_host, log); FIELD(plugcheck_host, register_method);
    FIELD(plugcheck_plugin, init); FIELD(plugcheck_plugin, free_buf);
    printf("minor %d\n", PLUGCHECK_ABI_MINOR);
    return 0;
}
"#;
    let frozen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/c/abi-1.0");
    let layout = compile_and_run(PROBE_1_0, &frozen);
    let expected = vec![
        format!(
            "v1.0 plugcheck_plugin {}",
            plugcheck_abi::DESCRIPTOR_V1_0_SIZE
        ),
        format!("v1.0 plugcheck_host {}", plugcheck_abi::HOST_V1_0_SIZE),
        format!("plugcheck_host.log {}", offset_of!(HostTable, log)),
        format!(
            "plugcheck_host.register_method {}",
            offset_of!(HostTable, register_method)
        ),
        format!("plugcheck_plugin.init {}", offset_of!(Descriptor, init)),
        format!(
            "plugcheck_plugin.free_buf {}",
            offset_of!(Descriptor, free_buf)
        ),
        "minor 0".to_owned(),
    ];
    assert_eq!(layout, expected);
}

/// Compiles `probe` against the header in `include` and returns what it
/// prints, line by line.
fn compile_and_run(probe: &str, include: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("probe.c");
    let binary = dir.path().join("probe");
    std::fs::write(&source, probe).unwrap();
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&binary)
        .arg("-I")
        .arg(include)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{compiler}` ({e}); install gcc"));
    assert!(
        status.success(),
        "the C probe did not compile against {}",
        include.display()
    );
    let output = Command::new(&binary).output().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}
