//! Embeds the case catalogue (`fixtures/cases/{saml,oidc,oidc-op,cns,cie,cie-oidc-rp,cie-oidc-op}/*.toml`) so the binary runs from any directory.
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cases");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    for family in [
        "saml",
        "oidc",
        "oidc-op",
        "cns",
        "cie",
        "cie-oidc-rp",
        "cie-oidc-op",
    ] {
        let dir = root.join(family);
        println!("cargo:rerun-if-changed={}", dir.display());
        // A catalogue that cannot be read is a broken checkout, never an empty catalogue.
        let rd = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read the case catalogue {}: {e}", dir.display()));
        {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    println!("cargo:rerun-if-changed={}", p.display());
                    files.push((format!("{family}/{}", e.file_name().to_string_lossy()), p));
                }
            }
        }
    }
    files.sort();
    let mut out = String::from("/// Embedded case files: (path under fixtures/cases, contents).\npub const EMBEDDED: &[(&str, &str)] = &[\n");
    for (name, p) in files {
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            p.canonicalize().unwrap_or(p.clone()).display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("cases.rs");
    std::fs::write(dest, out).expect("write cases.rs");
}
