//! The C header and the Rust types must describe the same bytes. A C probe
//! compiled against `include/plugcheck.h` prints every size, offset and
//! constant; the test compares them with what rustc laid out.

use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

use plugcheck_abi::{Buf, Descriptor, HostTable, status};

const PROBE: &str = r#"
#include <stdio.h>
#include "plugcheck.h"
#define FIELD(T, F) printf(#T "." #F " %zu\n", offsetof(T, F))
int main(void) {
    printf("sizeof plugcheck_buf %zu\n", sizeof(plugcheck_buf));
    printf("sizeof plugcheck_host %zu\n", sizeof(plugcheck_host));
    printf("sizeof plugcheck_plugin %zu\n", sizeof(plugcheck_plugin));
    FIELD(plugcheck_buf, ptr); FIELD(plugcheck_buf, len);
    FIELD(plugcheck_host, struct_size); FIELD(plugcheck_host, abi_major);
    FIELD(plugcheck_host, abi_minor); FIELD(plugcheck_host, ctx);
    FIELD(plugcheck_host, log); FIELD(plugcheck_host, register_method);
    FIELD(plugcheck_plugin, magic); FIELD(plugcheck_plugin, abi_major);
    FIELD(plugcheck_plugin, abi_minor); FIELD(plugcheck_plugin, struct_size);
    FIELD(plugcheck_plugin, name); FIELD(plugcheck_plugin, version);
    FIELD(plugcheck_plugin, toolchain); FIELD(plugcheck_plugin, init);
    FIELD(plugcheck_plugin, shutdown); FIELD(plugcheck_plugin, save_state);
    FIELD(plugcheck_plugin, restore_state); FIELD(plugcheck_plugin, free_buf);
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
    return 0;
}
"#;

fn rust_layout() -> Vec<String> {
    let mut lines = vec![
        format!("sizeof plugcheck_buf {}", size_of::<Buf>()),
        format!("sizeof plugcheck_host {}", size_of::<HostTable>()),
        format!("sizeof plugcheck_plugin {}", size_of::<Descriptor>()),
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
        register_method
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
        free_buf
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
    ]);
    lines
}

#[test]
fn c_header_matches_rust_layout() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("probe.c");
    let binary = dir.path().join("probe");
    std::fs::write(&source, PROBE).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&binary)
        .arg("-I")
        .arg(&include)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{compiler}` ({e}); install gcc"));
    assert!(
        status.success(),
        "the C probe did not compile against plugcheck.h"
    );
    let output = Command::new(&binary).output().unwrap();
    let c_layout: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(c_layout, rust_layout());
}
