//! Validators: the checks a candidate value must pass after its regex matched.
//!
//! Regexes find shapes; validators decide whether a shape is real (a checksum holds, an
//! address is public, a token is not a placeholder). Each one sees the value and the text
//! around it and answers yes or no; none allocates more than a few bytes or looks further
//! than the value and its immediate neighbours, so scanning stays linear.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use sha2::{Digest, Sha256};

/// A named check from `patterns/README.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Validator {
    Luhn,
    PaymentCard,
    Iban,
    UsSsn,
    UsItin,
    UkNino,
    UkNhs,
    CaSin,
    InAadhaar,
    EsNif,
    EsNie,
    ItCodiceFiscale,
    AuTfn,
    SgNric,
    PlPesel,
    AbaRouting,
    BtcAddress,
    EthAddress,
    GithubCrc32,
    Jwt,
    BasicAuth,
    Base64Secret,
    Base64PrivateKey,
    Email,
    Ipv4Public,
    Ipv4Versionlike,
    Ipv6Public,
    Mac,
    NetfilterMac,
    Phone,
    PhoneNanp,
    Date,
    NotPlaceholder,
    CredentialUrl,
    Hostname,
    NotSequence,
    SpokenEmail,
    ObfuscatedEmail,
}

impl Validator {
    pub(crate) fn from_name(name: &str) -> Option<Validator> {
        use Validator::*;
        Some(match name {
            "luhn" => Luhn,
            "payment_card" => PaymentCard,
            "iban" => Iban,
            "us_ssn" => UsSsn,
            "us_itin" => UsItin,
            "uk_nino" => UkNino,
            "uk_nhs" => UkNhs,
            "ca_sin" => CaSin,
            "in_aadhaar" => InAadhaar,
            "es_nif" => EsNif,
            "es_nie" => EsNie,
            "it_codice_fiscale" => ItCodiceFiscale,
            "au_tfn" => AuTfn,
            "sg_nric" => SgNric,
            "pl_pesel" => PlPesel,
            "aba_routing" => AbaRouting,
            "btc_address" => BtcAddress,
            "eth_address" => EthAddress,
            "github_crc32" => GithubCrc32,
            "jwt" => Jwt,
            "basic_auth" => BasicAuth,
            "base64_private_key" => Base64PrivateKey,
            "base64_secret" => Base64Secret,
            "email" => Email,
            "ipv4_public" => Ipv4Public,
            "ipv4_versionlike" => Ipv4Versionlike,
            "hostname" => Hostname,
            "not_sequence" => NotSequence,
            "spoken_email" => SpokenEmail,
            "obfuscated_email" => ObfuscatedEmail,
            "ipv6_public" => Ipv6Public,
            "mac" => Mac,
            "netfilter_mac" => NetfilterMac,
            "phone" => Phone,
            "phone_nanp" => PhoneNanp,
            "date" => Date,
            "not_placeholder" => NotPlaceholder,
            "credential_url" => CredentialUrl,
            _ => return None,
        })
    }

    /// Whether the check is a checksum over the whole value, which a number made of two
    /// unrelated ones passes only by chance (a value read across a line break may be).
    pub(crate) fn is_checksum(self) -> bool {
        use Validator::*;
        matches!(
            self,
            Luhn | PaymentCard
                | Iban
                | UkNhs
                | CaSin
                | InAadhaar
                | EsNif
                | EsNie
                | ItCodiceFiscale
                | AuTfn
                | SgNric
                | PlPesel
                | AbaRouting
                | BtcAddress
                | GithubCrc32
        )
    }

    /// Whether the numeric value should be compared with allowlists as digits only.
    pub(crate) fn is_numeric(self) -> bool {
        use Validator::*;
        matches!(
            self,
            Luhn | PaymentCard
                | UsSsn
                | UsItin
                | UkNhs
                | CaSin
                | InAadhaar
                | AuTfn
                | PlPesel
                | AbaRouting
                | Phone
        )
    }

    /// The check of a validator that reads nothing but the value's digits (not their
    /// separators, not the surrounding bytes), as a function of those digits; `None` for
    /// the others. The scanner may run it on a whole match before resolving the value's
    /// capture group, when the match holds no digit outside the value.
    pub(crate) fn on_digits(self) -> Option<fn(&[u8]) -> bool> {
        use Validator::*;
        let verdict: fn(&[u8]) -> bool = match self {
            Luhn => |d| d.len() >= 2 && luhn(d),
            PaymentCard => payment_card,
            UsSsn => us_ssn,
            UsItin => us_itin,
            UkNhs => uk_nhs,
            CaSin => |d| d.len() == 9 && d[0] != 0 && d[0] != 8 && luhn(d) && !all_same(d),
            InAadhaar => |d| d.len() == 12 && d[0] >= 2 && verhoeff(d) && !all_same(d),
            AuTfn => au_tfn,
            PlPesel => pl_pesel,
            AbaRouting => aba_routing,
            _ => return None,
        };
        Some(verdict)
    }

    /// Checks `hay[start..end]`, the candidate value inside the scanned bytes.
    pub(crate) fn check(self, hay: &[u8], start: usize, end: usize) -> bool {
        let v = &hay[start..end];
        use Validator::*;
        match self {
            PaymentCard => payment_card(&digits(v)) && !continues_a_time(&hay[..start]),
            Luhn | UsSsn | UsItin | UkNhs | CaSin | InAadhaar | AuTfn | PlPesel | AbaRouting => {
                self.on_digits().is_some_and(|verdict| verdict(&digits(v)))
            }
            Iban => iban(v),
            UkNino => uk_nino(v),
            EsNif => es_nif(v),
            EsNie => es_nie(v),
            ItCodiceFiscale => it_codice_fiscale(v),
            SgNric => sg_nric(v),
            BtcAddress => btc_address(v),
            EthAddress => eth_address(v),
            GithubCrc32 => github_crc32(v),
            Jwt => jwt(v),
            BasicAuth => basic_auth(v),
            Base64PrivateKey => base64_private_key(v),
            Base64Secret => base64_secret(v) && !names_an_identity(hay, start),
            Email => email(v) && !url_or_remote(&hay[end..]),
            Ipv4Public => ipv4_public(hay, start, end) && !versionlike(v),
            Ipv4Versionlike => ipv4_public(hay, start, end) && versionlike(v),
            Ipv6Public => ipv6_public(hay, start, end),
            Mac => mac(v),
            NetfilterMac => netfilter_mac(v),
            Phone => phone(v),
            PhoneNanp => phone_nanp(v) && !names_more(&hay[end..]),
            Date => date(v) && !followed_by_time(&hay[end..]),
            NotPlaceholder => !is_placeholder(v),
            CredentialUrl => credential_url(v),
            Hostname => hostname_ends(hay, end),
            NotSequence => !is_numeric_placeholder(v),
            ObfuscatedEmail => obfuscated_email(v),
            SpokenEmail => email(
                &v.iter()
                    .copied()
                    .filter(|&b| b != b' ')
                    .collect::<Vec<u8>>(),
            ),
        }
    }
}

/// The decimal digits of `v`, as values 0..=9, skipping separators.
/// The decimal digits of a value, on the stack: validators run on every candidate, and
/// a heap allocation per candidate showed up in profiles.
pub(crate) struct Digits {
    buf: [u8; MAX_DIGITS],
    len: usize,
}

/// No validated number has more digits than this; a value with more has none (and so
/// fails every numeric validator).
const MAX_DIGITS: usize = 32;

impl std::ops::Deref for Digits {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub(crate) fn digits(v: &[u8]) -> Digits {
    let mut d = Digits {
        buf: [0; MAX_DIGITS],
        len: 0,
    };
    for &b in v.iter().filter(|b| b.is_ascii_digit()) {
        if d.len == MAX_DIGITS {
            d.len = 0;
            return d;
        }
        d.buf[d.len] = b - b'0';
        d.len += 1;
    }
    d
}

fn all_same(d: &[u8]) -> bool {
    d.windows(2).all(|w| w[0] == w[1])
}

/// Whether a value that has six digits or more has digits that are a stand-in:
/// `123456789`, `987654321`, `000000`. Form hints and examples use them; no issuer does.
fn is_numeric_placeholder(v: &[u8]) -> bool {
    let d = digits(v);
    d.len() >= 6 && (all_same(&d) || is_sequence(&d))
}

/// Whether the host name ends at `end`: `db.corp` in `db.corp-site.example.org` or
/// `db.corp.example.org` does not.
fn hostname_ends(hay: &[u8], end: usize) -> bool {
    let label = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
    match hay.get(end) {
        Some(b'.') => !hay.get(end + 1).is_some_and(label),
        Some(b) => !label(b),
        None => true,
    }
}

/// `0123456789`-style runs, up or down.
fn is_sequence(d: &[u8]) -> bool {
    d.windows(2).all(|w| (w[0] + 1) % 10 == w[1]) || d.windows(2).all(|w| (w[1] + 1) % 10 == w[0])
}

pub(crate) fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = x as u32;
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn number(d: &[u8]) -> u32 {
    d.iter().fold(0, |acc, &x| acc * 10 + x as u32)
}

fn payment_card(d: &[u8]) -> bool {
    if !(13..=19).contains(&d.len()) || all_same(d) || !luhn(d) {
        return false;
    }
    let p2 = number(&d[..2]);
    let p3 = number(&d[..3]);
    let p4 = number(&d[..4]);

    match d[0] {
        4 => matches!(d.len(), 13 | 16 | 19),              // Visa
        5 if (51..=55).contains(&p2) => d.len() == 16,     // Mastercard
        2 if (2221..=2720).contains(&p4) => d.len() == 16, // Mastercard 2-series
        3 if p2 == 34 || p2 == 37 => d.len() == 15,        // Amex
        3 if (3528..=3589).contains(&p4) => (16..=19).contains(&d.len()), // JCB
        3 if (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 => {
            (14..=19).contains(&d.len()) // Diners
        }
        6 if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 => {
            (16..=19).contains(&d.len()) // Discover
        }
        6 if p2 == 62 || p2 == 81 => (16..=19).contains(&d.len()), // UnionPay
        5 | 6 if p2 == 50 || (56..=69).contains(&p2) => (12..=19).contains(&d.len()), // Maestro
        _ => false,
    }
}

fn iban_length(country: &[u8]) -> Option<usize> {
    const LENGTHS: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BI", 27),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DJ", 27),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FK", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"LY", 25),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MN", 20),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NI", 28),
        (b"NL", 18),
        (b"NO", 15),
        (b"OM", 23),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"RU", 33),
        (b"SA", 24),
        (b"SC", 31),
        (b"SD", 18),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"SO", 23),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
        (b"YE", 30),
    ];
    LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|&(_, n)| n)
}

fn iban(v: &[u8]) -> bool {
    let s: Vec<u8> = v
        .iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if s.len() < 15 || !s[..2].iter().all(u8::is_ascii_alphabetic) {
        return false;
    }
    if iban_length(&s[..2]) != Some(s.len()) || !s[2..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut rem: u32 = 0;
    for &b in s[4..].iter().chain(&s[..4]) {
        if b.is_ascii_digit() {
            rem = (rem * 10 + (b - b'0') as u32) % 97;
        } else {
            rem = (rem * 100 + (b - b'A' + 10) as u32) % 97;
        }
    }
    rem == 1
}

fn us_ssn(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let area = number(&d[..3]);
    let group = number(&d[3..5]);
    let serial = number(&d[5..]);
    // 078-05-1120 (the Woolworth wallet card) and 219-09-9999 (an SSA advertisement) are
    // published numbers, as is the textbook 123-45-6789.
    let famous = [78_051_120, 219_099_999, 123_456_789];
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !famous.contains(&number(d))
}

fn us_itin(d: &[u8]) -> bool {
    if d.len() != 9 || d[0] != 9 {
        return false;
    }
    let group = number(&d[3..5]);
    matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

fn uk_nino(v: &[u8]) -> bool {
    let s: Vec<u8> = v
        .iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if !(s.len() == 8 || s.len() == 9) {
        return false;
    }
    let (a, b) = (s[0], s[1]);
    if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() {
        return false;
    }
    if b"DFIQUV".contains(&a) || b"DFIQUVO".contains(&b) {
        return false;
    }
    let prefix = [a, b];
    if [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"].contains(&&prefix) {
        return false;
    }
    if !s[2..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    s.len() == 8 || b"ABCD".contains(&s[8])
}

fn uk_nhs(d: &[u8]) -> bool {
    if d.len() != 10 || all_same(d) {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, &x)| x as u32 * (10 - i as u32))
        .sum();
    let check = 11 - sum % 11;
    let check = if check == 11 { 0 } else { check };
    check != 10 && check == d[9] as u32
}

fn verhoeff(d: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, &x) in d.iter().rev().enumerate() {
        c = D[c as usize][P[i % 8][x as usize] as usize];
    }
    c == 0
}

const NIF_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

fn alnum_upper(v: &[u8]) -> Vec<u8> {
    v.iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(|b| b.to_ascii_uppercase())
        .collect()
}

fn es_nif(v: &[u8]) -> bool {
    let s = alnum_upper(v);
    if s.len() != 9 || !s[..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = number(&digits(&s[..8]));
    NIF_LETTERS[(n % 23) as usize] == s[8]
}

fn es_nie(v: &[u8]) -> bool {
    let s = alnum_upper(v);
    if s.len() != 9 || !s[1..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let lead = match s[0] {
        b'X' => 0,
        b'Y' => 1,
        b'Z' => 2,
        _ => return false,
    };
    let n = lead * 10_000_000 + number(&digits(&s[1..8]));
    NIF_LETTERS[(n % 23) as usize] == s[8]
}

fn it_codice_fiscale(v: &[u8]) -> bool {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let s = alnum_upper(v);
    if s.len() != 16 {
        return false;
    }
    let mut sum = 0;
    for (i, &c) in s[..15].iter().enumerate() {
        let k = if c.is_ascii_digit() {
            (c - b'0') as usize
        } else {
            (c - b'A') as usize
        };
        // Positions are counted from 1: odd positions use the odd table.
        sum += if i % 2 == 0 { ODD[k] } else { k as u32 };
    }
    s[15] == b'A' + (sum % 26) as u8
}

fn au_tfn(d: &[u8]) -> bool {
    let weights: &[u32] = match d.len() {
        9 => &[1, 4, 3, 7, 5, 8, 6, 9, 10],
        8 => &[10, 7, 8, 4, 6, 3, 5, 1],
        _ => return false,
    };
    if all_same(d) {
        return false;
    }
    let sum: u32 = d.iter().zip(weights).map(|(&x, w)| x as u32 * w).sum();
    sum.is_multiple_of(11)
}

fn sg_nric(v: &[u8]) -> bool {
    let s = alnum_upper(v);
    if s.len() != 9 || !s[1..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    const WEIGHTS: [u32; 7] = [2, 7, 6, 5, 4, 3, 2];
    let sum: u32 = s[1..8]
        .iter()
        .zip(WEIGHTS)
        .map(|(&c, w)| (c - b'0') as u32 * w)
        .sum();
    let (offset, table): (u32, &[u8; 11]) = match s[0] {
        b'S' => (0, b"JZIHGFEDCBA"),
        b'T' => (4, b"JZIHGFEDCBA"),
        b'F' => (0, b"XWUTRQPNMLK"),
        b'G' => (4, b"XWUTRQPNMLK"),
        b'M' => (3, b"KLJNPQRTUWX"),
        _ => return false,
    };
    let r = ((sum + offset) % 11) as usize;
    let check = if s[0] == b'M' {
        table[10 - r]
    } else {
        table[r]
    };
    check == s[8]
}

fn pl_pesel(d: &[u8]) -> bool {
    if d.len() != 11 || all_same(d) {
        return false;
    }
    const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = d[..10].iter().zip(W).map(|(&x, w)| x as u32 * w).sum();
    if (10 - sum % 10) % 10 != d[10] as u32 {
        return false;
    }
    let yy = number(&d[..2]);
    let mm = number(&d[2..4]);
    let dd = number(&d[4..6]);
    let (century, month) = match mm {
        1..=12 => (1900, mm),
        21..=32 => (2000, mm - 20),
        41..=52 => (2100, mm - 40),
        61..=72 => (2200, mm - 60),
        81..=92 => (1800, mm - 80),
        _ => return false,
    };
    valid_day(century + yy, month, dd)
}

fn valid_day(year: u32, month: u32, day: u32) -> bool {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

fn aba_routing(d: &[u8]) -> bool {
    if d.len() != 9 || all_same(d) {
        return false;
    }
    let prefix = number(&d[..2]);
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) {
        return false;
    }
    let w = [3u32, 7, 1];
    let sum: u32 = d
        .iter()
        .enumerate()
        .map(|(i, &x)| x as u32 * w[i % 3])
        .sum();
    sum.is_multiple_of(10)
}

fn btc_address(v: &[u8]) -> bool {
    let lower: Vec<u8> = v.to_ascii_lowercase();
    if lower.starts_with(b"bc1") {
        return bech32(&lower);
    }
    match base58_decode(v) {
        Some(raw) if raw.len() == 25 && (raw[0] == 0x00 || raw[0] == 0x05) => {
            let h = Sha256::digest(Sha256::digest(&raw[..21]));
            h[..4] == raw[21..]
        }
        _ => false,
    }
}

fn base58_decode(v: &[u8]) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out: Vec<u8> = Vec::with_capacity(32);
    for &c in v {
        let mut carry = ALPHABET.iter().position(|&a| a == c)? as u32;
        for byte in out.iter_mut().rev() {
            carry += *byte as u32 * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
        if out.len() > 64 {
            return None;
        }
    }
    let zeros = v.iter().take_while(|&&c| c == b'1').count();
    let mut raw = vec![0u8; zeros];
    raw.extend(out);
    Some(raw)
}

fn bech32(s: &[u8]) -> bool {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let Some(sep) = s.iter().rposition(|&c| c == b'1') else {
        return false;
    };
    let (hrp, data) = (&s[..sep], &s[sep + 1..]);
    if data.len() < 6 || !(14..=90).contains(&s.len()) {
        return false;
    }
    let mut values = Vec::with_capacity(hrp.len() * 2 + 1 + data.len());
    values.extend(hrp.iter().map(|c| c >> 5));
    values.push(0);
    values.extend(hrp.iter().map(|c| c & 31));
    for &c in data {
        match CHARSET.iter().position(|&a| a == c) {
            Some(p) => values.push(p as u8),
            None => return false,
        }
    }
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ v as u32;
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk == 1 || chk == 0x2bc830a3
}

fn eth_address(v: &[u8]) -> bool {
    let hex = v.strip_prefix(b"0x").or_else(|| v.strip_prefix(b"0X"));
    match hex {
        Some(h) => h.len() == 40 && h.iter().all(u8::is_ascii_hexdigit) && !all_same(h) && eip55(h),
        None => false,
    }
}

/// The EIP-55 checksum of 40 hex digits: all one case carries none; in mixed case, a
/// letter is upper case exactly where the Keccak-256 of the lowercase address has a
/// nibble of 8 or more. A mixed-case address that fails it is a typo or not an address.
fn eip55(hex: &[u8]) -> bool {
    let upper = hex.iter().any(u8::is_ascii_uppercase);
    let lower = hex.iter().any(u8::is_ascii_lowercase);
    if !(upper && lower) {
        return true;
    }
    let hash = keccak256(&hex.to_ascii_lowercase());
    hex.iter().enumerate().all(|(i, &c)| {
        let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0xf;
        !c.is_ascii_alphabetic() || c.is_ascii_uppercase() == (nibble >= 8)
    })
}

/// Keccak-256 as Ethereum uses it (the original padding, not SHA-3's).
fn keccak256(data: &[u8]) -> [u8; 32] {
    const RATE: usize = 136;
    let mut state = [0u64; 25];
    let mut absorb = |block: &[u8; RATE]| {
        for (lane, word) in state.iter_mut().zip(block.chunks_exact(8)) {
            *lane ^= u64::from_le_bytes(word.try_into().expect("8 bytes"));
        }
        keccak_f(&mut state);
    };
    let mut blocks = data.chunks_exact(RATE);
    for block in &mut blocks {
        absorb(block.try_into().expect("a whole block"));
    }
    let rest = blocks.remainder();
    let mut last = [0u8; RATE];
    last[..rest.len()].copy_from_slice(rest);
    last[rest.len()] ^= 0x01;
    last[RATE - 1] ^= 0x80;
    absorb(&last);
    let mut out = [0u8; 32];
    for (chunk, lane) in out.chunks_exact_mut(8).zip(state) {
        chunk.copy_from_slice(&lane.to_le_bytes());
    }
    out
}

/// The `Keccak-f[1600]` permutation (FIPS 202, section 3).
fn keccak_f(a: &mut [u64; 25]) {
    const RC: [u64; 24] = [
        0x0000000000000001,
        0x0000000000008082,
        0x800000000000808a,
        0x8000000080008000,
        0x000000000000808b,
        0x0000000080000001,
        0x8000000080008081,
        0x8000000000008009,
        0x000000000000008a,
        0x0000000000000088,
        0x0000000080008009,
        0x000000008000000a,
        0x000000008000808b,
        0x800000000000008b,
        0x8000000000008089,
        0x8000000000008003,
        0x8000000000008002,
        0x8000000000000080,
        0x000000000000800a,
        0x800000008000000a,
        0x8000000080008081,
        0x8000000000008080,
        0x0000000080000001,
        0x8000000080008008,
    ];
    // Rho's rotations and pi's lane order, walked as one cycle from lane 1.
    const ROTATE: [u32; 24] = [
        1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44,
    ];
    const LANE: [usize; 24] = [
        10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1,
    ];
    for rc in RC {
        let mut c = [0u64; 5];
        for (x, c) in c.iter_mut().enumerate() {
            *c = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
        }
        for x in 0..5 {
            let d = c[(x + 4) % 5] ^ c[(x + 1) % 5].rotate_left(1);
            for y in 0..5 {
                a[5 * y + x] ^= d;
            }
        }
        let mut carry = a[1];
        for (&lane, &r) in LANE.iter().zip(&ROTATE) {
            let next = a[lane];
            a[lane] = carry.rotate_left(r);
            carry = next;
        }
        for y in 0..5 {
            let row = [
                a[5 * y],
                a[5 * y + 1],
                a[5 * y + 2],
                a[5 * y + 3],
                a[5 * y + 4],
            ];
            for x in 0..5 {
                a[5 * y + x] = row[x] ^ (!row[(x + 1) % 5] & row[(x + 2) % 5]);
            }
        }
        a[0] ^= rc;
    }
}

pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn base62(mut n: u32, width: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Whether a value has the shape of a token format that carries its own checksum
/// (GitHub's `ghp_` and kin) and fails it: a made-up or mistyped token, which the
/// generic assignment detectors must not report either.
pub(crate) fn fails_its_checksum(v: &[u8]) -> bool {
    let github = matches!(v, [b'g', b'h', b'p' | b'o' | b'u' | b's' | b'r', b'_', ..]);
    github && v.len() == 40 && v[4..].iter().all(u8::is_ascii_alphanumeric) && !github_crc32(v)
}

fn github_crc32(v: &[u8]) -> bool {
    let Some(us) = v.iter().position(|&b| b == b'_') else {
        return false;
    };
    // A token wrapped across a line is read without its line break.
    let body: Vec<u8> = v[us + 1..]
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    body.len() == 36 && base62(crc32(&body[..30]), 6) == body[30..]
}

/// Decodes standard or URL-safe base64, with or without padding.
pub(crate) fn base64_decode(v: &[u8]) -> Option<Vec<u8>> {
    let v = v.strip_suffix(b"==").or(v.strip_suffix(b"=")).unwrap_or(v);
    if v.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(v.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in v {
        let x = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | x as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn jwt(v: &[u8]) -> bool {
    let mut parts = v.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(_sig)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if payload.is_empty() {
        return false;
    }
    let Some(json) = base64_decode(header) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&json) {
        Ok(serde_json::Value::Object(map)) => map.contains_key("alg"),
        _ => false,
    }
}

fn printable(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| {
        s.chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\r' || c == '\t')
    })
}

fn basic_auth(v: &[u8]) -> bool {
    let Some(raw) = base64_decode(v) else {
        return false;
    };
    if !printable(&raw) {
        return false;
    }
    match raw.iter().position(|&b| b == b':') {
        Some(colon) => {
            let password = &raw[colon + 1..];
            !password.is_empty() && !is_placeholder(password)
        }
        None => false,
    }
}

/// Base64 of a PEM block whose header line names a private key (`-----BEGIN EC PRIVATE
/// KEY-----`), read from the first 64 characters: a certificate is public.
fn base64_private_key(v: &[u8]) -> bool {
    let head = &v[..v.len().min(64) / 4 * 4];
    let Some(raw) = base64_decode(head) else {
        return false;
    };
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&raw);
    raw.starts_with(b"-----BEGIN ") && memchr::memmem::find(line, b"PRIVATE KEY").is_some()
}

fn base64_secret(v: &[u8]) -> bool {
    // Short values must decode to text (`namespace: payments` is valid base64 of
    // nothing); long ones may be binary key material.
    match base64_decode(v) {
        Some(raw) if raw.len() >= 24 => !is_placeholder(&raw),
        Some(raw) => raw.len() >= 4 && printable(&raw) && !is_placeholder(&raw),
        None => false,
    }
}

/// RFC 2606 / RFC 6761 names: documentation and special-use domains, and `example`
/// under any country's domain (`example.de`, `example.co.uk`, `mail.example.com.br`),
/// which documentation and forms in other languages use as RFC 2606 uses `example.com`.
pub(crate) fn is_reserved_domain(domain: &[u8]) -> bool {
    let d = domain.to_ascii_lowercase();
    let d = d.strip_suffix(b".").unwrap_or(&d);
    // `.local` (mDNS) is special-use too, but `db.ns.svc.cluster.local` credentials are
    // real ones: it is not treated as reserved.
    const TLDS: [&[u8]; 4] = [b"test", b"example", b"invalid", b"localhost"];
    if d == b"localhost" {
        return true;
    }
    let labels: Vec<&[u8]> = d.split(|&b| b == b'.').collect();
    // `example` and what follows it: `com`, `net`, `org` (RFC 2606) or a country's
    // top-level domain, or a second-level one under a country (`co.uk`, `com.au`).
    let documentation = labels
        .iter()
        .position(|l| *l == b"example")
        .is_some_and(|i| match &labels[i + 1..] {
            [tld] => {
                matches!(*tld, b"com" | b"net" | b"org")
                    || (tld.len() == 2 && tld.iter().all(u8::is_ascii_alphabetic))
            }
            [sld, cc] => {
                matches!(
                    *sld,
                    b"co" | b"com" | b"net" | b"org" | b"ac" | b"gov" | b"edu" | b"ne" | b"or"
                ) && cc.len() == 2
                    && cc.iter().all(u8::is_ascii_alphabetic)
            }
            _ => false,
        });
    documentation
        || TLDS
            .iter()
            .any(|t| d.len() > t.len() && d.ends_with(t) && d[d.len() - t.len() - 1] == b'.')
}

/// An address written around the `@` and the dots (`jane [at] acme [dot] de`, `jane at
/// acme dot de`, `jane@acme [dot] de`): its domain, read back, is not reserved.
fn obfuscated_email(v: &[u8]) -> bool {
    const AT: [&[u8]; 9] = [
        b"at",
        b"@",
        b"\xc3\xa4t",
        b"arroba",
        b"arobase",
        b"chiocciola",
        b"klammeraffe",
        b"ma\xc5\x82pa",
        b"malpa",
    ];
    const DOT: [&[u8]; 7] = [
        b"dot", b".", b"punkt", b"punto", b"point", b"kropka", b"ponto",
    ];
    let lower = v.to_ascii_lowercase();
    // Words of the address: the brackets and spaces around `at` and `dot` split them.
    let words: Vec<&[u8]> = lower
        .split(|&b| b.is_ascii() && !(b.is_ascii_alphanumeric() || b"_%+-.@".contains(&b)))
        .filter(|w| !w.is_empty())
        .collect();
    let domain = match words.iter().position(|w| AT.contains(w)) {
        Some(at) => words[at + 1..].to_vec(),
        // `jane@acme [dot] de`: the `@` inside a word.
        None => match words.iter().position(|w| w.contains(&b'@')) {
            Some(at) => {
                let after =
                    &words[at][words[at].iter().position(|&b| b == b'@').unwrap_or(0) + 1..];
                std::iter::once(after)
                    .chain(words[at + 1..].iter().copied())
                    .collect()
            }
            None => return true,
        },
    };
    let domain: Vec<&[u8]> = domain.into_iter().filter(|w| !DOT.contains(w)).collect();
    !is_reserved_domain(&domain.join(&b'.'))
}

/// Whether what follows a `user@host` makes it part of a URL or an SSH remote rather
/// than an address: a path (`/0`, `/team/infra.git`), or a `:path` with a slash after it
/// or ending in `.git` (`:org/repo.git`). A `:secret` after it is a `user:password` pair
/// (`curl --user 'jane@acme.de:...'`), whose user is the address.
fn url_or_remote(rest: &[u8]) -> bool {
    let Some((&first, rest)) = rest.split_first() else {
        return false;
    };
    let n = rest
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'~' | b'-' | b'.'))
        .count();
    match first {
        b'/' => true,
        b':' => n > 0 && (rest.get(n) == Some(&b'/') || rest[..n].ends_with(b".git")),
        _ => false,
    }
}

/// Whether the key a value is written under (`POSTGRES_USER: ...`, `"db-host": ...`)
/// names who or where, not a credential: a user name, host, port, database or region in
/// a Kubernetes Secret is base64 too, and no secret.
fn names_an_identity(hay: &[u8], start: usize) -> bool {
    let before = &hay[..start];
    let key_end = before
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'"' | b'\'' | b':'))
        .map_or(0, |i| i + 1);
    let key_start = before[..key_end]
        .iter()
        .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        .map_or(0, |i| i + 1);
    let key = before[key_start..key_end].to_ascii_lowercase();
    const IDENTITY: [&[u8]; 12] = [
        b"user",
        b"username",
        b"login",
        b"host",
        b"hostname",
        b"port",
        b"database",
        b"dbname",
        b"db",
        b"region",
        b"namespace",
        b"email",
    ];
    IDENTITY.iter().any(|name| {
        key.ends_with(name)
            && (key.len() == name.len()
                || matches!(key[key.len() - name.len() - 1], b'_' | b'-' | b'.'))
    })
}

fn email(v: &[u8]) -> bool {
    let Some(at) = v.iter().rposition(|&b| b == b'@') else {
        return false;
    };
    let (local, domain) = (&v[..at], &v[at + 1..]);
    if local.is_empty() || domain.is_empty() || is_reserved_domain(domain) {
        return false;
    }
    let tld = domain.rsplit(|&b| b == b'.').next().unwrap_or(b"");
    tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) && domain.contains(&b'.')
}

fn ipv4_public(hay: &[u8], start: usize, end: usize) -> bool {
    // Not part of a longer dotted run such as a version number `1.2.3.4.5` or an OID.
    let before = start.checked_sub(1).map(|i| hay[i]);
    let after = hay.get(end).copied();
    if matches!(before, Some(b'.' | b'0'..=b'9')) || matches!(after, Some(b'0'..=b'9')) {
        return false;
    }
    if after == Some(b'.') && hay.get(end + 1).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    // A name joined to it makes it a version: `glibc-2.34.0.100` (but `1.2.3.4-1.2.3.9` is
    // a range of addresses).
    if before == Some(b'-') && start >= 2 && hay[start - 2].is_ascii_alphabetic() {
        return false;
    }
    // A pre-release suffix makes it a version: `10.0.0.1-beta`, `1.2.3.4-rc1`.
    if after == Some(b'-') && hay.get(end + 1).is_some_and(u8::is_ascii_alphabetic) {
        return false;
    }
    let Ok(text) = std::str::from_utf8(&hay[start..end]) else {
        return false;
    };
    let Ok(ip) = text.parse::<std::net::Ipv4Addr>() else {
        return false;
    };
    let [a, b, c, _] = ip.octets();
    let bits = u32::from(ip);
    let netmask = bits != 0 && bits.leading_ones() + bits.trailing_zeros() == 32 && a == 255;
    !(is_registry_range(ip, prefix_len(&hay[end..]))
        || ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || a >= 240
        || netmask
        || (a, b, c) == (192, 0, 2)
        || (a, b, c) == (198, 51, 100)
        || (a, b, c) == (203, 0, 113))
}

/// Whether a dotted quad is shaped like a four-part version number: a first part of one
/// digit, second and third parts under 20 (`7.3.0.63`, `9.5.0.90`; also `8.8.8.8`).
/// Every blind corpus so far held such versions, 34 of them, and two such addresses,
/// both next to a network word (`DNS = 1.1.1.1`); a pattern of its own asks for one.
fn versionlike(v: &[u8]) -> bool {
    let mut parts = v.split(|&b| b == b'.');
    let mut part = || {
        parts
            .next()
            .and_then(|p| std::str::from_utf8(p).ok()?.parse::<u16>().ok())
    };
    matches!(
        (part(), part(), part()),
        (Some(1..=9), Some(0..=19), Some(0..=19))
    )
}

/// The prefix length of CIDR notation at the start of `rest` (`/12`), if any.
fn prefix_len(rest: &[u8]) -> Option<u32> {
    let digits = rest.strip_prefix(b"/")?;
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let len: u32 = std::str::from_utf8(&digits[..n.min(2)])
        .ok()?
        .parse()
        .ok()?;
    (n <= 2 && len <= 32).then_some(len)
}

/// A whole private or shared range as the registry defines it (`10.0.0.0/8`,
/// `172.16.0.0/12`, `192.168.0.0/16`, `100.64.0.0/10`): it names every such network, so
/// none of yours. A subnet of one (`172.16.40.0/24`) is a finding.
fn is_registry_range(ip: std::net::Ipv4Addr, prefix: Option<u32>) -> bool {
    const RANGES: [([u8; 4], u32); 4] = [
        ([10, 0, 0, 0], 8),
        ([172, 16, 0, 0], 12),
        ([192, 168, 0, 0], 16),
        ([100, 64, 0, 0], 10),
    ];
    prefix.is_some_and(|p| RANGES.contains(&(ip.octets(), p)))
}

fn ipv6_public(hay: &[u8], start: usize, end: usize) -> bool {
    // Not part of a longer colon-hex run, such as a certificate fingerprint.
    let after = hay.get(end).copied();
    if matches!(after, Some(b':' | b'.')) && hay.get(end + 1).is_some_and(u8::is_ascii_hexdigit) {
        return false;
    }
    // Before it: `:` after a group of hex digits that is not the end of a word (`src:`).
    if start >= 2 && hay[start - 1] == b':' {
        let group = hay[..start - 1]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let word = hay[..start - 1 - group]
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if group > 0 && !word {
            return false;
        }
    }
    let Ok(text) = std::str::from_utf8(&hay[start..end]) else {
        return false;
    };
    let text = text.split('%').next().unwrap_or(text);
    let Ok(ip) = text.parse::<std::net::Ipv6Addr>() else {
        return false;
    };
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        let s = v4.to_string();
        return ipv4_public(s.as_bytes(), 0, s.len());
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || s.iter().filter(|&&x| x != 0).count() < 2)
}

fn mac(v: &[u8]) -> bool {
    let hex: Vec<u8> = v
        .iter()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| b.to_ascii_lowercase())
        .collect();
    // RFC 7042 keeps 00-00-5E-00-53-xx (and 01-00-5E-90-10-xx) for documentation.
    let documentation = hex.starts_with(b"00005e0053") || hex.starts_with(b"01005e9010");
    hex.len() == 12
        && !hex.iter().all(|&b| b == b'0')
        && !hex.iter().all(|&b| b == b'f')
        && !documentation
}

/// A netfilter `MAC=` field's destination and source addresses, one after the other
/// (`ac:de:48:83:7e:ef:28:cf:e9:55:a7:31`): either one a MAC address as [`mac`] checks
/// (the destination may be broadcast, the source is a device).
fn netfilter_mac(v: &[u8]) -> bool {
    v.len() == 35 && (mac(&v[..17]) || mac(&v[18..]))
}

fn phone(v: &[u8]) -> bool {
    let d = digits(v);
    let international = v.first() == Some(&b'+');
    let range = if international { 8..=15 } else { 7..=15 };
    // Country code 1, written `+1` or `001`: a North American number.
    let nanp = match &*d {
        [1, rest @ ..] if international => Some(rest),
        [0, 0, 1, rest @ ..] if v.starts_with(b"001") => Some(rest),
        _ => None,
    };
    // The last seven digits all one digit (`03-0000-0000`, so the whole number too when it
    // is seven digits long) make a placeholder.
    range.contains(&d.len())
        && !all_same(&d[d.len() - 7..])
        && !is_sequence(&d)
        && nanp.is_none_or(|n| n.len() == 10 && nanp_number(n))
        && country_code_fits(v)
}

/// After `+` or `00`, the country code: of one digit, only 1 (North America) and 7
/// (Russia, Kazakhstan) exist, so `002 756 418` is not a number abroad.
fn country_code_fits(v: &[u8]) -> bool {
    let Some(rest) = v.strip_prefix(b"+").or_else(|| v.strip_prefix(b"00")) else {
        return true;
    };
    let code = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    code != 1 || matches!(rest[0], b'1' | b'7')
}

/// Whether a name part follows the number (`415-555-9963-A`, `...-v2`): an id, not a
/// number to call.
fn names_more(rest: &[u8]) -> bool {
    matches!(rest, [b'-' | b'_', b, ..] if b.is_ascii_alphabetic())
}

/// A national number in the format of the US and Canada (`phone-us`): what [`phone`]
/// checks, and the number plan's own rules.
fn phone_nanp(v: &[u8]) -> bool {
    let d = digits(v);
    let national = match &*d {
        [1, rest @ ..] if rest.len() == 10 => rest,
        all => all,
    };
    phone(v) && national.len() == 10 && nanp_number(national)
}

/// Ten digits (as values 0-9) that the North American Numbering Plan could assign: area
/// code and exchange beginning 2-9 (`800-012-3456` is a part number), and not
/// `555-0100` to `555-0199`, which the plan keeps for films, books and examples, as
/// RFC 2606 keeps `example.com`.
fn nanp_number(d: &[u8]) -> bool {
    let fictional = d[3..6] == [5, 5, 5] && d[6..8] == [0, 1];
    d[0] >= 2 && d[3] >= 2 && !fictional
}

/// Whether a time of day follows (`2024-03-18 10:11:12`, `...T10:11`): a timestamp,
/// not a date of birth.
fn followed_by_time(rest: &[u8]) -> bool {
    let Some((&sep, rest)) = rest.split_first() else {
        return false;
    };
    let hour = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    matches!(sep, b' ' | b'T') && (1..=2).contains(&hour) && rest.get(hour) == Some(&b':')
}

fn date(v: &[u8]) -> bool {
    const MONTHS: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    // A Japanese era year (`昭和44年`, `平成元年`) counts from the year before the era's
    // first.
    // (era, the year before its first, its last year if it has ended)
    const ERAS: [(&str, u32, u32); 5] = [
        ("明治", 1867, 45),
        ("大正", 1911, 15),
        ("昭和", 1925, 64),
        ("平成", 1988, 31),
        ("令和", 2018, u32::MAX),
    ];
    if let Some((era, before, last)) = ERAS.iter().find(|(e, _, _)| v.starts_with(e.as_bytes())) {
        let rest = &v[era.len()..];
        let (year, rest) = match rest.strip_prefix("元".as_bytes()) {
            Some(rest) => (1, rest),
            None => {
                let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                (number(&digits(&rest[..n])), &rest[n..])
            }
        };
        let mut gregorian = (before + year).to_string().into_bytes();
        gregorian.extend_from_slice(rest);
        return (1..=*last).contains(&year) && date(&gregorian);
    }
    let lower = v.to_ascii_lowercase();
    let mut numbers: Vec<u32> = Vec::new();
    let mut month_name = None;
    for part in lower
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        if part.iter().all(u8::is_ascii_digit) {
            if part.len() > 4 {
                return false;
            }
            numbers.push(number(&digits(part)));
        } else if let Some(m) = MONTHS.iter().position(|m| part.starts_with(m)) {
            month_name = Some(m as u32 + 1);
        } else if !matches!(part, b"st" | b"nd" | b"rd" | b"th" | b"of") {
            // `1st`, `2nd`: digits followed by a suffix.
            let n = part.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 || !matches!(&part[n..], b"st" | b"nd" | b"rd" | b"th") {
                return false;
            }
            numbers.push(number(&digits(&part[..n])));
        }
    }
    let this_year = current_year();
    // 1900 is no one's birth year now, and `1900-01-01` is the usual stand-in for none.
    let plausible = |y: u32, m: u32, d: u32| (1901..=this_year).contains(&y) && valid_day(y, m, d);
    match (month_name, numbers.as_slice()) {
        (Some(m), [d, y]) | (Some(m), [y, d]) if *y > 31 => plausible(*y, m, *d),
        (None, [a, b, c]) if *a > 31 => plausible(*a, *b, *c),
        (None, [a, b, c]) => plausible(*c, *b, *a) || plausible(*c, *a, *b),
        _ => false,
    }
}

/// The current calendar year (UTC), for dates of birth. Falls back to 2100 if the clock
/// is before 1970.
fn current_year() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Mean Gregorian year: off by at most a day around New Year, which is irrelevant for
    // rejecting birth dates in the future.
    if secs == 0 {
        2100
    } else {
        1970 + (secs / 31_556_952) as u32
    }
}

/// Whether a value is obviously a stand-in rather than a real secret: `YOUR_API_KEY`,
/// `xxxx`, `changeme`, `${VAR}`, `<token>`, `****`, one repeated character...
pub(crate) fn is_placeholder(v: &[u8]) -> bool {
    placeholder_text(v) || base64_placeholder(v)
}

/// Base64 of a placeholder, as in a Kubernetes Secret's `data:` (`Y2hhbmdlbWU=`).
fn base64_placeholder(v: &[u8]) -> bool {
    let t = v.trim_ascii();
    t.len() >= 8
        && t.len().is_multiple_of(4)
        && base64_decode(t).is_some_and(|d| {
            d.iter().all(|b| b.is_ascii_graphic() || *b == b' ') && placeholder_text(&d)
        })
}

fn placeholder_text(v: &[u8]) -> bool {
    let t = v.trim_ascii();
    let t = t
        .strip_prefix(b"\"")
        .and_then(|x| x.strip_suffix(b"\""))
        .or_else(|| t.strip_prefix(b"'").and_then(|x| x.strip_suffix(b"'")))
        .unwrap_or(t);
    if t.len() < 4 || all_same(t) {
        return true;
    }
    let lower = t.to_ascii_lowercase();
    const WHOLE: [&[u8]; 22] = [
        b"password",
        b"passwd",
        b"secret",
        b"token",
        b"null",
        b"none",
        b"nil",
        b"undefined",
        b"true",
        b"false",
        b"string",
        b"value",
        b"apikey",
        b"api_key",
        b"hidden",
        b"masked",
        b"redacted",
        b"changeme",
        b"default",
        b"admin",
        b"required",
        b"optional",
    ];
    if WHOLE.contains(&lower.as_slice()) {
        return true;
    }
    // A name in lower snake or kebab case that says what it stands for
    // (`reporting_password`, `db-secret`): a variable, not its value.
    let name = t
        .iter()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        && t.iter().any(|b| matches!(b, b'_' | b'-'));
    const NAMES: [&[u8]; 4] = [b"password", b"passwd", b"secret", b"token"];
    if name && NAMES.iter().any(|n| memchr::memmem::find(t, n).is_some()) {
        return true;
    }
    // A digest written with its algorithm (`sha256=9a42...`, as webhook signatures are) is
    // a hash of something, not the secret.
    const DIGESTS: [&[u8]; 5] = [b"sha1=", b"sha256=", b"sha512=", b"md5=", b"sha384-"];
    if DIGESTS.iter().any(|d| lower.starts_with(d)) {
        return true;
    }
    if placeholder_parts().is_match(&lower) || angle_bracket_name(&lower) {
        return true;
    }
    // A bracketed note (`<YOUR DB PASSWORD!>`, `<mot de passe à changer>`).
    if t.starts_with(b"<") && t.ends_with(b">") && t.contains(&b' ') {
        return true;
    }
    // A count or size joined to a word (`12-stellig`, `2FA-Reset`, `3-day`): prose.
    let count = t.iter().take_while(|b| b.is_ascii_digit()).count();
    let unit = t[count..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    if count > 0
        && unit <= 3
        && t.get(count + unit) == Some(&b'-')
        && t.len() - count - unit > 2
        && t[count + unit + 1..].iter().all(u8::is_ascii_alphabetic)
    {
        return true;
    }
    // Environment and template references: `$DB_PASSWORD`, `%APPDATA%`, `process.env.X`.

    (lower.starts_with(b"$")
        && lower[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_'))
        || (lower.starts_with(b"%") && lower.ends_with(b"%"))
        || lower.starts_with(b"process.env")
        || lower.starts_with(b"os.environ")
        || lower.starts_with(b"os.getenv")
        || lower.starts_with(b"env(")
}

/// Whether the bytes before a number end in a time of day's hours and minutes
/// (`12:44:`): the number goes on from the time (`12:44:50.128  4208  14327`, a log
/// line's seconds, process and thread ids), and is not a card.
fn continues_a_time(before: &[u8]) -> bool {
    matches!(before, [.., h, b':', m1, m2, b':'] if h.is_ascii_digit() && m1.is_ascii_digit() && m2.is_ascii_digit())
}

/// A name in angle brackets (`<password>`, `<db token>`, `<API_KEY>`) stands in for a
/// value: letters, or words joined by `_`, `-`, `.` or spaces. A lone `<` or `>` does
/// not, nor do random characters between two (`...2K<$yco...`, `Xq7<kP2>v9`): salts and
/// strong passwords hold them.
fn angle_bracket_name(lower: &[u8]) -> bool {
    memchr::memchr_iter(b'<', lower).any(|i| {
        let rest = &lower[i + 1..];
        let len = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b' ' | b'.'))
            .count();
        let name = &rest[..len];
        let words = name.iter().all(u8::is_ascii_lowercase)
            || name.iter().any(|b| matches!(b, b'_' | b'-' | b' ' | b'.'));
        len >= 3 && words && rest.get(len) == Some(&b'>')
    })
}

/// Pieces that mark a whole value as a stand-in, in one automaton built once: a
/// `memmem::find` per piece builds a searcher per call, which cost ~2 µs per secret
/// candidate.
fn placeholder_parts() -> &'static AhoCorasick {
    static PARTS: OnceLock<AhoCorasick> = OnceLock::new();
    PARTS.get_or_init(|| {
        AhoCorasick::new([
            "example",
            "xxxx",
            "your_",
            "your-",
            "yourkey",
            "your key",
            "changeme",
            "change_me",
            "placeholder",
            "dummy",
            "redacted",
            "sample",
            "${",
            "{{",
            "$(",
            "****",
            "...",
            "replace_me",
            "insert_",
            "fake",
            "1234567890",
            "abcdef123456",
            // wp-config-sample.php: `password_here`, `put your unique phrase here`.
            "_here",
            "your unique phrase",
        ])
        .expect("the placeholder pieces build")
    })
}

fn credential_url(v: &[u8]) -> bool {
    let Some(scheme_end) = memchr::memmem::find(v, b"://") else {
        return false;
    };
    let rest = &v[scheme_end + 3..];
    // The last `@` ends the user info: a password decoded from `%40`, `%23` or `%3F` may
    // hold `@`, `#` or `?` itself.
    let Some(at) = rest.iter().rposition(|&b| b == b'@') else {
        return false;
    };
    let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
    let host_end = host
        .iter()
        .position(|&b| b == b'/' || b == b'?' || b == b'#')
        .unwrap_or(host.len());
    let host = &host[..host_end];
    let Some(colon) = userinfo.iter().position(|&b| b == b':') else {
        return false;
    };
    let password = &userinfo[colon + 1..];
    // `http://localhost:3000?email=jane@acme.io`: a port and a query, not a password.
    let port = password.split(|&b| b == b'?').next().unwrap_or(password);
    if password.contains(&b'?')
        && (1..=5).contains(&port.len())
        && port.iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    let host = host.split(|&b| b == b':').next().unwrap_or(host);
    // `localhost` is reserved as a name, not as a secret: a strong password copied from a
    // server's `.env` is still one (`postgres:postgres` is not).
    let real = if host.eq_ignore_ascii_case(b"localhost") {
        password.len() >= 12 && entropy(password) >= 3.0
    } else {
        !is_reserved_domain(host)
    };
    !password.is_empty() && !is_placeholder(password) && real
}

/// Shannon entropy of `v` in bits per byte.
pub(crate) fn entropy(v: &[u8]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in v {
        counts[b as usize] += 1;
    }
    let n = v.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: Validator, s: &str) -> bool {
        v.check(s.as_bytes(), 0, s.len())
    }

    #[test]
    fn keccak_and_eip55() {
        let hex = |h: [u8; 32]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        // Longer than one block (136 bytes).
        assert_eq!(
            hex(keccak256(&[b'a'; 200])),
            "96ea54061def936c4be90b518992fdc6f12f535068a256229aca54267b4d084d"
        );
        // EIP-55's own examples.
        for good in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            assert!(ok(Validator::EthAddress, good), "{good}");
            assert!(ok(Validator::EthAddress, &good.to_ascii_lowercase()));
        }
        assert!(!ok(
            Validator::EthAddress,
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
        ));
    }

    #[test]
    fn checksums() {
        use Validator::*;
        assert!(ok(PaymentCard, "4539 1488 0343 6467"));
        assert!(!ok(PaymentCard, "4539 1488 0343 6468"));
        assert!(ok(PaymentCard, "378282246310005"));
        assert!(ok(Iban, "DE89 3704 0044 0532 0130 00"));
        assert!(ok(Iban, "GB82WEST12345698765432"));
        assert!(!ok(Iban, "DE89 3704 0044 0532 0130 01"));
        assert!(ok(UkNhs, "943 476 5919"));
        assert!(!ok(UkNhs, "943 476 5918"));
        assert!(ok(InAadhaar, "2341 2341 2346"));
        assert!(ok(EsNif, "12345678Z"));
        assert!(ok(EsNie, "X1234567L"));
        assert!(ok(ItCodiceFiscale, "RSSMRA85T10A562S"));
        assert!(ok(AuTfn, "123 456 782"));
        assert!(ok(SgNric, "S1234567D"));
        assert!(ok(PlPesel, "44051401359"));
        assert!(ok(AbaRouting, "011000015"));
        assert!(ok(BtcAddress, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"));
        assert!(ok(BtcAddress, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
        assert!(ok(BtcAddress, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"));
        assert!(!ok(BtcAddress, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3"));
        assert!(ok(UsSsn, "536-22-1947"));
        assert!(!ok(UsSsn, "666-22-1947"));
        assert!(!ok(UsSsn, "078-05-1120"));
        assert!(ok(UkNino, "AB 12 34 56 C"));
        assert!(!ok(UkNino, "QQ 12 34 56 C"));
        assert!(ok(CaSin, "130 692 544"));
        assert!(!ok(CaSin, "046 454 286"));
    }

    #[test]
    fn github_token_checksum() {
        let body = b"aBcDeFgHiJkLmNoPqRsTuVwXyZ0123";
        let mut token = b"ghp_".to_vec();
        token.extend_from_slice(body);
        token.extend(base62(crc32(body), 6));
        assert!(Validator::GithubCrc32.check(&token, 0, token.len()));
        let last = token.len() - 1;
        token[last] = if token[last] == b'a' { b'b' } else { b'a' };
        assert!(!Validator::GithubCrc32.check(&token, 0, token.len()));
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn addresses() {
        let ok4 = |s: &str| ipv4_public(s.as_bytes(), 0, s.len());
        assert!(ok4("8.8.8.8"));
        assert!(ok4("10.1.2.3"));
        for bad in [
            "127.0.0.1",
            "0.0.0.0",
            "169.254.1.1",
            "224.0.0.1",
            "255.255.255.255",
            "255.255.255.0",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.9",
        ] {
            assert!(!ok4(bad), "{bad}");
        }
        let hay = b"v1.2.3.4.5";
        assert!(!ipv4_public(hay, 1, 8));
        let ok6 = |s: &str| ipv6_public(s.as_bytes(), 0, s.len());
        assert!(ok6("2a00:1450:4001:81c::200e"));
        assert!(!ok6("2001:db8::1"));
        assert!(!ok6("fe80::1"));
        assert!(!ok6("::1"));
        assert!(ok(Validator::Email, "jane@acme.io"));
        assert!(!ok(Validator::Email, "jane@example.com"));
        assert!(!ok(Validator::Email, "jane@mail.example.org"));
        assert!(!ok(Validator::Email, "jane@host.test"));
        // `example` under a country's domain is documentation; names holding it are not.
        for reserved in [
            "jane@example.de",
            "jane@mail.example.co.uk",
            "j@example.com.br",
        ] {
            assert!(!ok(Validator::Email, reserved), "{reserved}");
        }
        for real in [
            "jane@example-corp.de",
            "jane@myexample.de",
            "j@examples.fr",
            "j@example.acme.de",
            "j@example.dev",
            "j@example.company",
        ] {
            assert!(ok(Validator::Email, real), "{real}");
        }
        let obfuscated = |v| ok(Validator::ObfuscatedEmail, v);
        assert!(obfuscated("jane [at] acme-mail [dot] de"));
        assert!(obfuscated("m.hoffmann (ät) gmx (punkt) net"));
        assert!(obfuscated("ops@acme-mail[.]io"));
        assert!(!obfuscated("billing [at] example [dot] com"));
        assert!(!obfuscated("info (ät) example (punkt) de"));
        assert!(!obfuscated("jan małpa example kropka pl"));
        assert!(!obfuscated("mail@example[.]co[.]uk"));
    }

    #[test]
    fn a_name_in_angle_brackets_is_a_placeholder_and_a_lone_bracket_is_not() {
        assert!(!is_placeholder(b"12-Tiger!x"));
        for p in [
            "<password>",
            "<db token>",
            "Bearer <API_KEY>",
            "<your-key.here>",
        ] {
            assert!(is_placeholder(p.as_bytes()), "{p}");
        }
        for real in [
            "T}qk}7eZPr_wj2o-[,9K<$ycoMvF}W,>u3RATK",
            "Xq7<kP2>v9Lm#",
            "a<>b9Kq2mZ",
        ] {
            assert!(!is_placeholder(real.as_bytes()), "{real}");
        }
    }

    #[test]
    fn a_number_that_goes_on_from_a_time_is_not_a_card() {
        let card = |text: &str, value: &str| {
            let start = text.find(value).unwrap();
            Validator::PaymentCard.check(text.as_bytes(), start, start + value.len())
        };
        // A logcat line's seconds, process and thread ids (Luhn-valid; 50 is Maestro).
        let log = "01-03 12:44:50.128  4208  14327 E AndroidRuntime";
        assert!(!card(log, "50.128  4208  14327"));
        assert!(card("card: 5170 523353-326303", "5170 523353-326303"));
        assert!(card(
            "at 12:44 card 4539 1488 0343 6467",
            "4539 1488 0343 6467"
        ));
    }

    #[test]
    fn a_port_before_a_query_is_not_a_password() {
        let url = |v| ok(Validator::CredentialUrl, v);
        assert!(!url("http://localhost:3000?email=jane.doe@acme.io"));
        assert!(!url("redis://cache:6379?client=ops@acme.io"));
        assert!(url("postgres://app:Harbor_62kLq?@pg-3.prod.internal:5432"));
        assert!(url("redis://:Quartz!52MTX?@cache:6379"));
    }

    #[test]
    fn japanese_era_years_count_from_the_era_and_end_with_it() {
        let date = |v: &str| ok(Validator::Date, v);
        assert!(date("昭和44年8月7日") && date("平成元年1月8日") && date("令和2年3月4日"));
        // Shōwa ended in its 64th year, Heisei in its 31st.
        assert!(!date("昭和65年1月1日") && !date("平成32年1月1日"));
    }

    #[test]
    fn phones_after_plus_one_are_north_american() {
        let phone = |v| ok(Validator::Phone, v);
        assert!(phone("+1 415 867 5309"));
        // Seven digits after `+1`, the fictional exchange, an area code of 1.
        assert!(!phone("+1 555 0100"));
        assert!(!phone("+1 415 555 0142"));
        assert!(!phone("+1 115 867 5309"));
        // The last seven digits all one digit: a placeholder.
        assert!(!phone("03-0000-0000"));
        assert!(phone("03-3666-7489"));
    }

    #[test]
    fn placeholders_and_dates() {
        for p in [
            "<YOUR DB PASSWORD!>",
            "<mot de passe à changer>",
            "12-stellig",
            "2FA-Reset",
            "YOUR_API_KEY",
            "xxxxxxxx",
            "changeme",
            "${DB_PASSWORD}",
            "<token>",
            "********",
            "$SECRET",
        ] {
            assert!(is_placeholder(p.as_bytes()), "{p}");
        }
        assert!(!is_placeholder(b"s3cr3t-Passw0rd!"));
        // Kubernetes Secret data: the base64 of a placeholder is one too.
        assert!(is_placeholder(b"Y2hhbmdlbWU="));
        assert!(!is_placeholder(b"czNjcjN0LVBhc3N3MHJkIQ=="));
        assert!(ok(Validator::Date, "1985-03-12"));
        assert!(ok(Validator::Date, "12/03/1985"));
        assert!(ok(Validator::Date, "12 March 1985"));
        assert!(!ok(Validator::Date, "31/02/1985"));
        assert!(ok(
            Validator::Jwt,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
        ));
        assert!(!ok(
            Validator::Jwt,
            "eyJmb28iOiJiYXIifQ.eyJzdWIiOiIxIn0.c2ln"
        ));
        assert!(ok(Validator::BasicAuth, "YWxhZGRpbjpvcGVuc2VzYW1l"));
        assert!(!ok(Validator::BasicAuth, "YWxhZGRpbg=="));
    }
}
