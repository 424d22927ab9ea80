"""The order in which upstream's `load` hands back names.

Upstream collects loaded arrays (and GGUF metadata) in a C++ `std::unordered_map` and
converts it to a dict by iterating it, so its key order is that of libstdc++'s hash table
(on Linux, where the reference build runs): the keys hashed with `std::hash<std::string>`
(a 64-bit Murmur variant), chained in buckets of a prime count that grows as keys arrive,
each new key placed at the front of its bucket. Replaying those insertions gives the same
iteration order, so code that walks `mx.load(...)` sees names in the order upstream gives."""

_MASK = (1 << 64) - 1
_MUL = (0xC6A4A793 << 32) + 0x5BD1E995
_SEED = 0xC70F6907
# bucket counts the table takes for small requests, then the primes it chooses among
_FAST = (2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13)
_PRIMES = (
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
    89, 97, 103, 109, 113, 127, 137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257,
    277, 293, 313, 337, 359, 383, 409, 439, 467, 503, 541, 577, 619, 661, 709, 761, 823,
    887, 953, 1031, 1109, 1193, 1289, 1381, 1493, 1613, 1741, 1879, 2029, 2179, 2357, 2549,
    2753, 2971, 3209, 3469, 3739, 4027, 4349, 4703, 5087, 5503, 5953, 6427, 6949, 7517,
    8123, 8783, 9497, 10273, 11113, 12011, 12983, 14033, 15173, 16411, 17749, 19183, 20753,
    22447, 24281, 26267, 28411, 30727, 33223, 35933, 38873, 42043, 45481, 49201, 53201,
    57557, 62233, 67307, 72817, 78779, 85229, 92203, 99733, 107897, 116731, 126271, 136607,
    147793, 159871, 172933, 187091, 202409, 218971, 236897, 256279, 277261, 299951, 324503,
    351061, 379787, 410857, 444487, 480881, 520241, 562841, 608903, 658753, 712697, 771049,
    834181, 902483, 976369)


def _shift_mix(v):
    return v ^ (v >> 47)


def str_hash(key):
    """libstdc++'s std::hash<std::string> of the UTF-8 bytes of `key`."""
    b = key.encode("utf-8", "surrogatepass")
    n = len(b)
    h = (_SEED ^ (n * _MUL)) & _MASK
    whole = n & ~7
    for i in range(0, whole, 8):
        d = (_shift_mix((int.from_bytes(b[i:i + 8], "little") * _MUL) & _MASK) * _MUL) & _MASK
        h = ((h ^ d) * _MUL) & _MASK
    if n & 7:
        h = ((h ^ int.from_bytes(b[whole:], "little")) * _MUL) & _MASK
    h = (_shift_mix(h) * _MUL) & _MASK
    return _shift_mix(h)


def _next_bucket_count(n):
    """(bucket count, element count that triggers the next growth) for a request of n."""
    if n < len(_FAST):
        b = _FAST[n] if n else 1
        return b, b
    for p in _PRIMES[6:]:
        if p >= n:
            return p, p
    return None


def unordered(keys):
    """`keys` (in insertion order, duplicates ignored) in libstdc++ unordered_map order."""
    hashes = {}
    for k in keys:
        hashes.setdefault(k, str_hash(k))
    if len(hashes) >= _PRIMES[-1]:  # past the table above: keep the order we have
        return list(hashes)
    # the table's list is a function of the order keys reached the current bucket count:
    # `seq`, restarted from the list itself at each growth (a rehash walks the list)
    seq, nb, resize = [], 1, 0
    for k in hashes:
        n = len(seq)
        if n + 1 > resize:
            want = max(n + 1, 0 if resize else 11)
            if want >= nb:
                seq = _chain(seq, hashes, nb)
                nb, resize = _next_bucket_count(max(want + 1, nb * 2))
            else:
                resize = nb
        seq.append(k)
    return _chain(seq, hashes, nb)


def _chain(seq, hashes, nb):
    """The table's list after inserting `seq` in order into nb buckets: a key opening a
    bucket goes to the front of the list, any other to the front of its bucket's run."""
    runs = {}
    for k in seq:
        runs.setdefault(hashes[k] % nb, []).append(k)
    return [k for run in reversed(runs.values()) for k in reversed(run)]
