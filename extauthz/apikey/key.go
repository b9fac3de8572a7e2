package apikey

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/tollgate/tollgate/extauthz/contract"
)

// Key format:
//
//	tg_<id>_<secret>_<checksum>
//
// id is 8 base62 characters (public: it names the key in listings, logs and
// the revoke API), secret is 32 base62 characters (about 190 random bits),
// and checksum is the CRC-32 (IEEE) of "tg_<id>_<secret>", written as 6
// base62 digits, most significant first, zero-padded. The checksum lets
// Parse reject typos and garbage without any I/O; it is not a secret.
const (
	keyPrefix   = "tg_"
	idLen       = contract.KeyIDLen
	secretLen   = 32
	checksumLen = 6

	idStart     = len(keyPrefix)
	idEnd       = idStart + idLen // index of the '_' after the id
	secretStart = idEnd + 1
	secretEnd   = secretStart + secretLen // index of the '_' before the checksum
	bodyLen     = secretEnd               // the text the checksum covers
	keyLen      = secretEnd + 1 + checksumLen

	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// randAccept is the largest multiple of 62 that fits in a byte: random
	// bytes at or above it are rejected so every character is uniform.
	randAccept = 62 * (256 / 62)
)

// ErrMalformed reports a string that cannot be an API key: wrong prefix,
// length, separators, alphabet or checksum.
var ErrMalformed = errors.New("apikey: malformed key")

// Generate returns a new key and its id, drawing randomness from rand
// (crypto/rand.Reader in production).
func Generate(rand io.Reader) (key string, id string, err error) {
	chars, err := randomBase62(rand, idLen+secretLen)
	if err != nil {
		return "", "", fmt.Errorf("apikey: generate key: %w", err)
	}
	buf := make([]byte, 0, keyLen)
	buf = append(buf, keyPrefix...)
	buf = append(buf, chars[:idLen]...)
	buf = append(buf, '_')
	buf = append(buf, chars[idLen:]...)
	buf = append(buf, '_')
	buf = appendChecksum(buf, checksum(string(buf[:bodyLen])))
	return string(buf), string(chars[:idLen]), nil
}

// Parse checks the syntax of key and returns its id. It does no I/O.
// An opaque key's checksum is checked; a signed key ("tg." + JWS, see
// SignedKeyPrefix) must be at most MaxSignedKeyLen bytes, an EdDSA JWS
// whose claims hold iss SignedKeyIssuer, a sub and a valid jti (its id),
// but its signature is not verified here. Errors wrap ErrMalformed and
// never contain the key.
func Parse(key string) (id string, err error) {
	id, _, err = parse(key)
	return id, err
}

// parse is Parse, also returning a signed key's epoch ("" for an opaque
// key, or a signed key without one).
func parse(key string) (id, ep string, err error) {
	if IsSigned(key) {
		return parseSigned(key)
	}
	id, err = parseOpaque(key)
	return id, "", err
}

// parseOpaque is Parse for a key that is not signed.
func parseOpaque(key string) (id string, err error) {
	if len(key) != keyLen {
		return "", fmt.Errorf("%w: length %d, want %d", ErrMalformed, len(key), keyLen)
	}
	if key[:idStart] != keyPrefix {
		return "", fmt.Errorf("%w: prefix is not %q", ErrMalformed, keyPrefix)
	}
	if key[idEnd] != '_' || key[secretEnd] != '_' {
		return "", fmt.Errorf("%w: misplaced separator", ErrMalformed)
	}
	for i := idStart; i < keyLen; i++ {
		if i != idEnd && i != secretEnd && !isBase62(key[i]) {
			return "", fmt.Errorf("%w: invalid character at offset %d", ErrMalformed, i)
		}
	}
	var want [checksumLen]byte
	appendChecksum(want[:0], checksum(key[:bodyLen]))
	if string(want[:]) != key[secretEnd+1:] {
		return "", fmt.Errorf("%w: checksum mismatch", ErrMalformed)
	}
	return key[idStart:idEnd], nil
}

// checksum returns the CRC-32 (IEEE) of body, computed on the string
// directly so that Parse does not allocate.
func checksum(body string) uint32 {
	tab := crc32.IEEETable
	crc := ^uint32(0)
	for i := range len(body) {
		crc = tab[byte(crc)^body[i]] ^ (crc >> 8)
	}
	return ^crc
}

// appendChecksum appends sum to dst as checksumLen base62 digits.
func appendChecksum(dst []byte, crc uint32) []byte {
	sum := uint64(crc)
	var digits [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		digits[i] = base62[sum%62]
		sum /= 62
	}
	return append(dst, digits[:]...)
}

// randomBase62 returns n uniformly distributed base62 characters.
func randomBase62(rand io.Reader, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4)
	for len(out) < n {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if b < randAccept && len(out) < n {
				out = append(out, base62[b%62])
			}
		}
	}
	return out, nil
}

// validID reports whether id has the shape of a key id.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := range len(id) {
		if !isBase62(id[i]) {
			return false
		}
	}
	return true
}

func isBase62(c byte) bool {
	return ('0' <= c && c <= '9') || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z')
}
