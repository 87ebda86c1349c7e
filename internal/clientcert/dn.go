package clientcert

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDNBytes bounds a distinguished name string: 1024 bytes.
const MaxDNBytes = 1024

// DN is a parsed distinguished name: its RDNs in the order of the
// certificate's ASN.1 sequence (the reverse of the RFC 4514 string), each
// a set of attribute type and value.
type DN [][]Attribute

// Attribute is one attribute type and value of an RDN.
type Attribute struct {
	Type  asn1.ObjectIdentifier
	Value string
}

// attributeTypes are the short names RFC 4514 §3 lists, and a few more in
// common use in certificate subjects.
var attributeTypes = map[string]asn1.ObjectIdentifier{
	"CN":           {2, 5, 4, 3},
	"SERIALNUMBER": {2, 5, 4, 5},
	"C":            {2, 5, 4, 6},
	"L":            {2, 5, 4, 7},
	"ST":           {2, 5, 4, 8},
	"STREET":       {2, 5, 4, 9},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"POSTALCODE":   {2, 5, 4, 17},
	"DC":           {0, 9, 2342, 19200300, 100, 1, 25},
	"UID":          {0, 9, 2342, 19200300, 100, 1, 1},
	"EMAILADDRESS": {1, 2, 840, 113549, 1, 9, 1},
}

// ParseDN reads an RFC 4514 string ("CN=billing,O=Example\, Inc.,C=DE"):
// attribute types by short name (CN, O, OU, C, L, ST, STREET, DC, UID,
// SERIALNUMBER, POSTALCODE, emailAddress; case-insensitive) or dotted
// OID, values with RFC 4514 §2.4 escapes (\, \+ \" \\ \< \> \; \= \#,
// a leading space, and \XX hex pairs of UTF-8), multi-valued RDNs joined
// by "+". Hex-encoded BER values ("#04...") are refused: they cannot be
// compared as text. Returns an error saying what does not parse.
func ParseDN(s string) (DN, error) {
	if len(s) > MaxDNBytes {
		return nil, fmt.Errorf("longer than %d bytes", MaxDNBytes)
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("not UTF-8")
	}
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	var rdns [][]Attribute
	var rdn []Attribute
	for i := 0; ; {
		// attributeType "="
		for i < len(s) && s[i] == ' ' {
			i++
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return nil, fmt.Errorf("%q has no \"=\"", s[i:])
		}
		name := strings.TrimSpace(s[i : i+eq])
		oid, err := attributeType(name)
		if err != nil {
			return nil, err
		}
		i += eq + 1
		if i < len(s) && s[i] == '#' {
			return nil, fmt.Errorf("%s: hex-encoded values are not supported; give the value as text", name)
		}
		value, n, err := parseValue(s[i:])
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		if value == "" {
			return nil, fmt.Errorf("%s has an empty value", name)
		}
		if !utf8.ValidString(value) {
			return nil, fmt.Errorf("%s: its \\XX escapes are not UTF-8", name)
		}
		i += n
		rdn = append(rdn, Attribute{Type: oid, Value: value})
		if i == len(s) {
			rdns = append(rdns, rdn)
			break
		}
		switch s[i] {
		case '+':
		case ',', ';': // ";" is RFC 1779's separator, still sent
			rdns = append(rdns, rdn)
			rdn = nil
		}
		i++
	}
	// The string starts with the last RDN of the sequence (RFC 4514 §2.1).
	for l, r := 0, len(rdns)-1; l < r; l, r = l+1, r-1 {
		rdns[l], rdns[r] = rdns[r], rdns[l]
	}
	return DN(rdns), nil
}

func attributeType(name string) (asn1.ObjectIdentifier, error) {
	if oid, ok := attributeTypes[strings.ToUpper(name)]; ok {
		return oid, nil
	}
	if name == "" || name[0] < '0' || name[0] > '9' {
		return nil, fmt.Errorf("unknown attribute type %q: use CN, O, OU, C, L, ST, STREET, DC, UID, SERIALNUMBER, POSTALCODE, emailAddress or a dotted OID", name)
	}
	var oid asn1.ObjectIdentifier
	for part := range strings.SplitSeq(name, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || (len(part) > 1 && part[0] == '0') {
			return nil, fmt.Errorf("attribute type %q is not a dotted OID", name)
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, fmt.Errorf("attribute type %q is not a dotted OID", name)
	}
	return oid, nil
}

// parseValue reads an attribute value up to an unescaped ",", ";" or "+"
// (or the end), and returns it unescaped with its surrounding unescaped
// spaces trimmed, and the bytes read.
func parseValue(s string) (string, int, error) {
	var b []byte
	keep := 0 // length of b that ends with an escaped character
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ',' || c == ';' || c == '+':
			return trimValue(b, keep), i, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", 0, errors.New("ends in a lone \\")
			}
			n := s[i+1]
			if isHex(n) {
				if i+2 >= len(s) || !isHex(s[i+2]) {
					return "", 0, errors.New("\\ followed by one hex digit")
				}
				v, _ := hex.DecodeString(s[i+1 : i+3])
				b = append(b, v[0])
				i += 3
			} else if strings.IndexByte(` "#+,;<=>\`, n) >= 0 {
				b = append(b, n)
				i += 2
			} else {
				return "", 0, fmt.Errorf("\\%c is not an escape", n)
			}
			keep = len(b)
		case c == '"' || c == '<' || c == '>' || c == 0:
			return "", 0, fmt.Errorf("%q must be escaped", c)
		case c == ' ' && len(b) == 0:
			i++ // an unescaped leading space is not part of the value
		default:
			b = append(b, c)
			i++
		}
	}
	return trimValue(b, keep), i, nil
}

// trimValue trims the unescaped trailing spaces of a value: b[:keep]
// ends with its last escaped character, which stays.
func trimValue(b []byte, keep int) string {
	end := len(b)
	for end > keep && b[end-1] == ' ' {
		end--
	}
	return string(b[:end])
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// subjectDN reads a certificate's subject as a DN, from its DER: the
// order of its RDNs and their multi-valued sets, which pkix.Name loses.
func subjectDN(cert *x509.Certificate) (DN, bool) {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) > 0 {
		return nil, false
	}
	dn := make(DN, 0, len(seq))
	for _, set := range seq {
		rdn := make([]Attribute, 0, len(set))
		for _, atv := range set {
			v, ok := atv.Value.(string)
			if !ok {
				return nil, false
			}
			rdn = append(rdn, Attribute{Type: atv.Type, Value: v})
		}
		dn = append(dn, rdn)
	}
	return dn, true
}

// MatchSubject reports whether cert's subject is dn: the same RDNs in the
// same order, each with the same attributes in any order, values equal
// under the LDAP string matching of these attribute types (RFC 4517
// caseIgnoreMatch, RFC 4518: case and insignificant spaces do not count).
func MatchSubject(cert *x509.Certificate, dn DN) bool {
	got, ok := subjectDN(cert)
	if !ok || len(got) != len(dn) {
		return false
	}
	for i := range dn {
		if !sameRDN(got[i], dn[i]) {
			return false
		}
	}
	return true
}

func sameRDN(a, b []Attribute) bool {
	if len(a) != len(b) {
		return false
	}
	used := make([]bool, len(a))
	for _, x := range b {
		found := false
		for j, y := range a {
			if !used[j] && x.Type.Equal(y.Type) && normalize(x.Value) == normalize(y.Value) {
				used[j], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// normalize applies RFC 4518's insignificant-space handling and case
// folding: leading and trailing spaces dropped, inner runs of spaces made
// one.
func normalize(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// String returns dn as an RFC 4514 string, with short names where known.
func (dn DN) String() string {
	var b strings.Builder
	for i := len(dn) - 1; i >= 0; i-- {
		if i != len(dn)-1 {
			b.WriteByte(',')
		}
		for j, a := range dn[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(typeName(a.Type))
			b.WriteByte('=')
			b.WriteString(escapeValue(a.Value))
		}
	}
	return b.String()
}

func typeName(oid asn1.ObjectIdentifier) string {
	for name, o := range attributeTypes {
		if o.Equal(oid) {
			if name == "EMAILADDRESS" {
				return "emailAddress"
			}
			return name
		}
	}
	return oid.String()
}

func escapeValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case strings.IndexByte(`"+,;<>\=`, c) >= 0,
			c == '#' && i == 0,
			c == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
