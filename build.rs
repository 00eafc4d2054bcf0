//! Build script: with the `emu` feature (on by default), compiles every kernel family in kernels/
//! as plain C++ for the emulated CUDA device (kernels/emu.h, kernels/emu_rt.cpp; kernels/README.md).
//!
//! For each kernels/<family>.cu it writes a translation unit
//!     #include "emu.h"
//!     namespace kiln_emu_<family> { #include "common.cuh"  #include "<family>.cu" }
//! where the included .cu is a copy with `extern "C"` blanked out (families may reuse kernel names,
//! and C linkage would clash in one library; the namespace keeps them apart) and a `#line` that
//! points gdb and compiler messages back at the original file. The kernel list is not parsed from
//! the source: the TU is preprocessed once with -DKILN_EMU_SCAN, where emu.h turns `__global__` into
//! the marker `kiln_emu_kernel`, and every `kiln_emu_kernel void NAME(` in the output (macro-stamped
//! instances included) is a kernel. Each `extern __shared__ T name[];` in the copy becomes a pointer
//! to the emulator's per-thread dynamic shared buffer (kiln_emu::dyn_smem, emu.h). The TU then ends with a lookup function from kernel name to a caller that unpacks
//! cuLaunchKernel-style parameters into the kernel's own types (kiln_emu::entry, deduced from the
//! function pointer), and a generated registry lists the families for kiln_emu_launch.
//! KILN_EMU_CXXFLAGS adds compiler flags (scripts/emu-tsan.sh passes -fsanitize=thread);
//! KILN_EMU_OPT sets the optimisation level (default 2; 0 for stepping through a kernel in gdb).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "emu")]
    emu::build();
}

#[cfg(feature = "emu")]
mod emu {
    use std::fmt::Write as _;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    pub fn build() {
        let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
        let kdir = root.join("kernels");
        let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("emu");
        std::fs::create_dir_all(&out).unwrap();
        println!("cargo:rerun-if-changed=kernels");
        println!("cargo:rerun-if-env-changed=KILN_EMU_CXXFLAGS");
        println!("cargo:rerun-if-env-changed=KILN_EMU_OPT");
        let extra: Vec<String> = std::env::var("KILN_EMU_CXXFLAGS").unwrap_or_default().split_whitespace().map(String::from).collect();
        let opt: u32 = std::env::var("KILN_EMU_OPT").ok().and_then(|v| v.parse().ok()).unwrap_or(2);

        let mut families: Vec<String> = std::fs::read_dir(&kdir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension().is_some_and(|x| x == "cu")).then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
            })
            .collect();
        families.sort();

        let mut build = base(&kdir, opt, &extra);
        build.file(kdir.join("emu_rt.cpp"));
        build.file(kdir.join("emu_async.cpp"));
        build.file(kdir.join("emu_warp.cpp"));
        let mut registry = String::from("#include \"emu.h\"\nstruct KilnEmuFamily { const char* name; const kiln_emu::Entry* (*find)(const char*); };\n");
        for fam in &families {
            let tu = family_tu(fam, &kdir, &out, opt, &extra);
            build.file(&tu);
            writeln!(registry, "extern \"C\" const kiln_emu::Entry* kiln_emu_find_{fam}(const char*);").unwrap();
        }
        registry.push_str("extern \"C\" const KilnEmuFamily kiln_emu_families[] = {\n");
        for fam in &families {
            writeln!(registry, "    {{\"{fam}\", kiln_emu_find_{fam}}},").unwrap();
        }
        writeln!(registry, "    {{nullptr, nullptr}}}};\nextern \"C\" const unsigned kiln_emu_nfamilies = {};", families.len()).unwrap();
        let reg = out.join("registry.cpp");
        write_if_changed(&reg, &registry);
        build.file(&reg);
        build.compile("kiln_emu");
        if extra.iter().any(|f| f == "-fsanitize=thread") {
            println!("cargo:rustc-link-lib=dylib=tsan");
        }
    }

    fn base(kdir: &Path, opt: u32, extra: &[String]) -> cc::Build {
        let mut b = cc::Build::new();
        b.cpp(true)
            .std("c++20")
            .include(kdir)
            .define("KILN_EMU", "1")
            .opt_level(opt)
            .warnings(false)
            .flag("-pthread")
            .flag("-fno-strict-aliasing") // kernels reinterpret bf16 arrays as uint2 etc.
            .flag("-Wno-psabi") // TmaMap (64-byte aligned) by value: GCC notes an ABI change of 4.6
            .flag("-ffp-contract=off")
            .flag("-ftls-model=initial-exec") // shared memory is thread_local; no __tls_get_addr calls
            .flag("-fno-extern-tls-init"); // extern __shared__ arrays: constant-initialised, no TLS wrapper
        if opt == 0 {
            b.debug(true);
        }
        for f in extra {
            b.flag(f);
        }
        b
    }

    /// Write the translation unit of one family; returns its path.
    fn family_tu(fam: &str, kdir: &Path, out: &Path, opt: u32, extra: &[String]) -> PathBuf {
        let src_path = kdir.join(format!("{fam}.cu"));
        let src = std::fs::read_to_string(&src_path).unwrap();
        // Same length, so columns stay right; the #line keeps lines and the file name right.
        let src = rewrite_extern_shared(&src.replace("extern \"C\"", "          "), fam);
        let copy = format!("#line 1 \"{}\"\n{}", src_path.display(), src);
        let cu = out.join(format!("{fam}.cu"));
        write_if_changed(&cu, &copy);
        let head = format!(
            "#include \"emu.h\"\nnamespace kiln_emu_{fam} {{\n#include \"common.cuh\"\n#include \"{}\"\n}}\n",
            cu.display()
        );
        let scan_path = out.join(format!("{fam}_scan.cpp"));
        std::fs::write(&scan_path, &head).unwrap();
        let mut pre = base(kdir, opt, extra);
        pre.define("KILN_EMU_SCAN", "1");
        let mut cmd: Command = pre.get_compiler().to_command();
        let output = cmd.arg("-E").arg("-P").arg(&scan_path).output().expect("running the C++ preprocessor");
        if !output.status.success() {
            panic!("preprocessing kernels/{fam}.cu failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let kernels = scan_kernels(&text);
        if let Some(end) = after_word(&text, "extern").find(|&e| ident_at(text.as_bytes(), skip_ws(text.as_bytes(), e)).0 == "kiln_emu_shared") {
            let line = &text[end.saturating_sub(6)..text[end..].find(';').map_or(text.len(), |i| end + i + 1)];
            panic!("kernels/{fam}.cu: `{line}` was not rewritten for the emulator (an extern __shared__ made by a macro?): declare it in the kernel's body, outside macros");
        }

        let mut tu = head.clone();
        writeln!(tu, "extern \"C\" const kiln_emu::Entry* kiln_emu_find_{fam}(const char* name) {{").unwrap();
        writeln!(tu, "    static const kiln_emu::Entry table[] = {{").unwrap();
        for k in &kernels {
            writeln!(tu, "        kiln_emu::entry(\"{k}\", &kiln_emu_{fam}::{k}),").unwrap();
        }
        writeln!(tu, "        kiln_emu::Entry{{nullptr, nullptr, nullptr, 0, nullptr}}}};").unwrap();
        writeln!(tu, "    for (const kiln_emu::Entry* e = table; e->name; e++)\n        if (!__builtin_strcmp(e->name, name)) return e;").unwrap();
        writeln!(tu, "    return nullptr;\n}}").unwrap();
        let path = out.join(format!("{fam}_emu.cpp"));
        write_if_changed(&path, &tu);
        path
    }

    fn write_if_changed(path: &Path, text: &str) {
        if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
            std::fs::write(path, text).unwrap();
        }
    }

    fn is_ident(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'_'
    }

    /// Positions just after each whole-word occurrence of `word`.
    fn after_word<'a>(text: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
        let b = text.as_bytes();
        text.match_indices(word).filter_map(move |(i, _)| {
            let end = i + word.len();
            let before_ok = i == 0 || !is_ident(b[i - 1]);
            let after_ok = end >= b.len() || !is_ident(b[end]);
            (before_ok && after_ok).then_some(end)
        })
    }

    fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }

    fn ident_at(b: &[u8], i: usize) -> (&str, usize) {
        let mut j = i;
        while j < b.len() && is_ident(b[j]) {
            j += 1;
        }
        (std::str::from_utf8(&b[i..j]).unwrap(), j)
    }

    /// Names of `kiln_emu_kernel void NAME(` in preprocessed text, first occurrence order.
    fn scan_kernels(text: &str) -> Vec<String> {
        let b = text.as_bytes();
        let mut names: Vec<String> = vec![];
        for end in after_word(text, "kiln_emu_kernel") {
            let (ret, j) = ident_at(b, skip_ws(b, end));
            if ret != "void" {
                continue;
            }
            let (name, j) = ident_at(b, skip_ws(b, j));
            if !name.is_empty() && b.get(skip_ws(b, j)) == Some(&b'(') && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// `src` with each `extern __shared__ [attributes] T name[];` (dynamic shared memory) replaced by
    /// `T* const name = kiln_emu::dyn_smem<T>(__func__);`, the emulator's per-thread buffer (emu.h).
    fn rewrite_extern_shared(src: &str, fam: &str) -> String {
        const KEY: &str = "extern __shared__";
        let mut out = String::with_capacity(src.len());
        let mut rest = src;
        while let Some(i) = rest.find(KEY) {
            out.push_str(&rest[..i]);
            let after = &rest[i + KEY.len()..];
            let semi = after.find(';').unwrap_or_else(|| panic!("kernels/{fam}.cu: `{KEY}` without a `;`"));
            let decl = strip_attributes(&after[..semi]);
            let open = decl.find('[').unwrap_or_else(|| panic!("kernels/{fam}.cu: {KEY} `{}` is not an array", decl.trim()));
            let head = decl[..open].trim();
            let split = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
            let (ty, name) = (head[..split].trim(), &head[split..]);
            assert!(!ty.is_empty() && !name.is_empty(), "kernels/{fam}.cu: cannot read the type and name of {KEY} `{}`", decl.trim());
            write!(out, "{ty}* const {name} = kiln_emu::dyn_smem<{ty}>(__func__);").unwrap();
            rest = &after[semi + 1..];
        }
        out.push_str(rest);
        out
    }

    /// `decl` without its `__align__(...)` and `__attribute__((...))` groups.
    fn strip_attributes(decl: &str) -> String {
        let mut out = String::new();
        let mut rest = decl;
        let next = |r: &str| ["__attribute__", "__align__"].iter().filter_map(|w| r.find(w).map(|i| (i, w.len()))).min();
        while let Some((i, len)) = next(rest) {
            out.push_str(&rest[..i]);
            let after = &rest[i + len..];
            let mut depth = 0;
            let mut end = after.len();
            for (k, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &after[end..];
        }
        out.push_str(rest);
        out
    }
}
