//! Packing a snapshot into a stored artifact and back: zstd compression, optional age
//! encryption, and SHA-256 of both the database and the artifact, all in one streamed pass.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// Sizes and hashes of one packed (or unpacked) pair of files.
#[derive(Debug, Clone)]
pub struct Packed {
    pub db_bytes: u64,
    pub db_sha256: String,
    pub file_bytes: u64,
    pub file_sha256: String,
}

/// Counts and hashes what passes through it.
struct Hashing<T> {
    inner: T,
    hash: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }
    fn digest(self) -> (T, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hash.finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// SHA-256 and size of a file.
pub fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = Hashing::new(BufReader::with_capacity(1 << 20, file));
    io::copy(&mut reader, &mut io::sink())
        .with_context(|| format!("reading {}", path.display()))?;
    let (_, bytes, sha) = reader.digest();
    Ok((bytes, sha))
}

/// Compress `db` into `out` (and encrypt it to `recipients`, if any), hashing both sides.
/// `out` is synced to disk before this returns.
pub fn pack(
    db: &Path,
    out: &Path,
    level: i32,
    recipients: &[age::x25519::Recipient],
) -> anyhow::Result<Packed> {
    let input = File::open(db).with_context(|| format!("opening {}", db.display()))?;
    let mut input = Hashing::new(BufReader::with_capacity(1 << 20, input));
    let output = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let output = Hashing::new(BufWriter::with_capacity(1 << 20, output));
    let writing = || format!("writing {}", out.display());
    let output = if recipients.is_empty() {
        compress(&mut input, output, level).with_context(writing)?
    } else {
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .context("preparing encryption")?;
        let sealed = encryptor.wrap_output(output).with_context(writing)?;
        compress(&mut input, sealed, level)
            .with_context(writing)?
            .finish()
            .with_context(writing)?
    };
    let (buffered, file_bytes, file_sha256) = output.digest();
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(writing)?;
    file.sync_all().with_context(writing)?;
    let (_, db_bytes, db_sha256) = input.digest();
    Ok(Packed {
        db_bytes,
        db_sha256,
        file_bytes,
        file_sha256,
    })
}

fn compress<R: Read, W: Write>(input: &mut R, output: W, level: i32) -> io::Result<W> {
    let mut encoder = zstd::Encoder::new(output, level)?;
    io::copy(input, &mut encoder)?;
    encoder.finish()
}

/// Reverse `pack`: decrypt (with `identities`, when the artifact is encrypted) and decompress
/// `artifact` into `db`, hashing both sides. `db` is synced to disk before this returns.
pub fn unpack(
    artifact: &Path,
    db: &Path,
    encrypted: bool,
    identities: &[Box<dyn age::Identity + Send + Sync>],
) -> anyhow::Result<Packed> {
    let input = File::open(artifact).with_context(|| format!("opening {}", artifact.display()))?;
    let mut input = Hashing::new(BufReader::with_capacity(1 << 20, input));
    let output = File::create(db).with_context(|| format!("creating {}", db.display()))?;
    let mut output = Hashing::new(BufWriter::with_capacity(1 << 20, output));
    if encrypted {
        if identities.is_empty() {
            bail!("the backup is encrypted: give the age identity file (--identity)");
        }
        let decryptor = age::Decryptor::new_buffered(BufReader::new(&mut input))
            .context("reading the encrypted backup")?;
        let plain = decryptor
            .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .context("decrypting the backup (is it the right identity?)")?;
        decompress(plain, &mut output)?;
    } else {
        decompress(&mut input, &mut output)?;
    }
    // Read whatever the decoders left (trailing bytes would otherwise escape the hash).
    io::copy(&mut input, &mut io::sink()).context("reading the backup")?;
    let (buffered, db_bytes, db_sha256) = output.digest();
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", db.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", db.display()))?;
    let (_, file_bytes, file_sha256) = input.digest();
    Ok(Packed {
        db_bytes,
        db_sha256,
        file_bytes,
        file_sha256,
    })
}

fn decompress<R: Read, W: Write>(input: R, output: &mut W) -> anyhow::Result<()> {
    let mut decoder = zstd::Decoder::new(input).context("reading the compressed backup")?;
    io::copy(&mut decoder, output).context("decompressing the backup")?;
    Ok(())
}

/// Read an age identity file (as written by `age-keygen`).
pub fn read_identities(path: &Path) -> anyhow::Result<Vec<Box<dyn age::Identity + Send + Sync>>> {
    age::IdentityFile::from_file(path.display().to_string())
        .with_context(|| format!("reading the identity file {}", path.display()))?
        .into_identities()
        .with_context(|| format!("reading the identity file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn sample(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("in.db");
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        std::fs::write(&path, data).unwrap();
        path
    }

    #[test]
    fn plain_round_trip_keeps_every_byte_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let db = sample(dir.path());
        let packed = pack(&db, &dir.path().join("a.zst"), 3, &[]).unwrap();
        assert!(packed.file_bytes < packed.db_bytes / 4, "{packed:?}");
        assert_eq!(
            hash_file(&dir.path().join("a.zst")).unwrap().1,
            packed.file_sha256
        );
        let back = unpack(
            &dir.path().join("a.zst"),
            &dir.path().join("b.db"),
            false,
            &[],
        )
        .unwrap();
        assert_eq!(back.db_sha256, packed.db_sha256);
        assert_eq!(back.file_sha256, packed.file_sha256);
        assert_eq!(
            std::fs::read(&db).unwrap(),
            std::fs::read(dir.path().join("b.db")).unwrap()
        );
    }

    #[test]
    fn encrypted_round_trip_needs_the_right_identity() {
        let dir = tempfile::tempdir().unwrap();
        let db = sample(dir.path());
        let key = age::x25519::Identity::generate();
        let packed = pack(&db, &dir.path().join("a.age"), 3, &[key.to_public()]).unwrap();
        // Without the identity, or with another one, nothing is written out as plaintext.
        let err = unpack(
            &dir.path().join("a.age"),
            &dir.path().join("b.db"),
            true,
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err:#}");
        let other: Box<dyn age::Identity + Send + Sync> =
            Box::new(age::x25519::Identity::generate());
        assert!(
            unpack(
                &dir.path().join("a.age"),
                &dir.path().join("b.db"),
                true,
                &[other]
            )
            .is_err()
        );
        let file = dir.path().join("key.txt");
        std::fs::write(&file, key.to_string().expose_secret()).unwrap();
        let ids = read_identities(&file).unwrap();
        let back = unpack(
            &dir.path().join("a.age"),
            &dir.path().join("b.db"),
            true,
            &ids,
        )
        .unwrap();
        assert_eq!(back.db_sha256, packed.db_sha256);
    }
}
