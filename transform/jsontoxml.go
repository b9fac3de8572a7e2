package transform

import (
	"bytes"
	"encoding/json/jsontext"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tollgate/tollgate/transform/contract"
)

// Names of the mapping (see the package documentation).
const (
	// NamespaceURI is the namespace of the type hints, bound to the prefix
	// "json" on the root element.
	NamespaceURI = "urn:tollgate:json"
	// DefaultRoot names the root element when the route names none.
	DefaultRoot = "root"
	// MaxDepth bounds the nesting of objects and arrays (elements).
	MaxDepth = 128

	hintPrefix = "json"
	itemName   = "item"
	memberName = "member"
	typeAttr   = "type"
	arrayAttr  = "array"
	keyAttr    = "key"
)

// Values of json:type.
const (
	typeNumber  = "number"
	typeBoolean = "boolean"
	typeNull    = "null"
	typeString  = "string"
	typeObject  = "object"
	typeArray   = "array"
)

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// InputError is a body that cannot be converted: malformed, too deep, or
// holding something the mapping cannot represent.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// IsInputError reports whether err is (or wraps) an InputError.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// JSONToXML converts one JSON document to XML with the root element root
// ("" means DefaultRoot). It fails with an InputError when in is not
// exactly one valid JSON value (duplicate member names and invalid UTF-8
// included) or holds what XML cannot, and when root is not an XML name.
func JSONToXML(in []byte, root string) ([]byte, error) {
	if root == "" {
		root = DefaultRoot
	}
	if !contract.PlainName(root) {
		return nil, inputErrorf("root element name %q is not an XML name", root)
	}
	c := &jsonToXML{dec: jsontext.NewDecoder(bytes.NewReader(in))}
	c.out.Grow(len(in) + len(in)/2 + 64)
	c.out.WriteString(xmlHeader)
	if err := c.element(root, ` xmlns:json="`+NamespaceURI+`"`, 0); err != nil {
		return nil, err
	}
	if _, err := c.dec.ReadToken(); err != io.EOF {
		return nil, inputErrorf("invalid JSON: unexpected data after the top-level value")
	}
	return c.out.Bytes(), nil
}

// jsonToXML converts a JSON token stream to XML.
type jsonToXML struct {
	dec *jsontext.Decoder
	out bytes.Buffer
}

// element writes the next JSON value as the element name with the
// attributes attrs (already formatted, each with a leading space).
func (c *jsonToXML) element(name, attrs string, depth int) error {
	if depth > MaxDepth {
		return inputErrorf("JSON nested deeper than %d levels", MaxDepth)
	}
	switch c.dec.PeekKind() {
	case '{':
		return c.object(name, attrs, depth)
	case '[':
		return c.array(name, attrs, depth)
	}
	v, err := c.dec.ReadValue()
	if err != nil {
		return invalidJSON(err)
	}
	switch v.Kind() {
	case '"':
		s, err := jsontext.AppendUnquote(nil, v)
		if err != nil {
			return invalidJSON(err)
		}
		return c.leaf(name, attrs, string(s))
	case '0':
		return c.leaf(name, attrs+hint(typeAttr, typeNumber), string(v))
	case 't', 'f':
		return c.leaf(name, attrs+hint(typeAttr, typeBoolean), string(v))
	default: // 'n'
		c.empty(name, attrs+hint(typeAttr, typeNull))
		return nil
	}
}

// object writes a JSON object: one child per member, or an empty element
// marked as an object.
func (c *jsonToXML) object(name, attrs string, depth int) error {
	if _, err := c.dec.ReadToken(); err != nil {
		return invalidJSON(err)
	}
	if c.dec.PeekKind() == '}' {
		c.dec.ReadToken()
		c.empty(name, attrs+hint(typeAttr, typeObject))
		return nil
	}
	c.open(name, attrs)
	for c.dec.PeekKind() != '}' {
		key, err := c.dec.ReadToken()
		if err != nil {
			return invalidJSON(err)
		}
		if err := c.member(key.String(), depth+1); err != nil {
			return err
		}
	}
	if _, err := c.dec.ReadToken(); err != nil {
		return invalidJSON(err)
	}
	c.close(name)
	return nil
}

// member writes one object member: repeated elements for an array value,
// one element otherwise.
func (c *jsonToXML) member(key string, depth int) error {
	name, attrs := key, ""
	if !contract.PlainName(key) {
		if err := checkXMLText(key); err != nil {
			return err
		}
		name, attrs = memberName, hint(keyAttr, key)
	}
	if c.dec.PeekKind() != '[' {
		return c.element(name, attrs, depth)
	}
	if _, err := c.dec.ReadToken(); err != nil {
		return invalidJSON(err)
	}
	if c.dec.PeekKind() == ']' {
		c.dec.ReadToken()
		c.empty(name, attrs+hint(typeAttr, typeArray))
		return nil
	}
	for c.dec.PeekKind() != ']' {
		if err := c.element(name, attrs+hint(arrayAttr, "true"), depth+1); err != nil {
			return err
		}
	}
	_, err := c.dec.ReadToken()
	return invalidJSON(err)
}

// array writes an array that is not a member value: an element marked as
// an array, holding one "item" child per item.
func (c *jsonToXML) array(name, attrs string, depth int) error {
	if _, err := c.dec.ReadToken(); err != nil {
		return invalidJSON(err)
	}
	attrs += hint(typeAttr, typeArray)
	if c.dec.PeekKind() == ']' {
		c.dec.ReadToken()
		c.empty(name, attrs)
		return nil
	}
	c.open(name, attrs)
	for c.dec.PeekKind() != ']' {
		if err := c.element(itemName, "", depth+1); err != nil {
			return err
		}
	}
	if _, err := c.dec.ReadToken(); err != nil {
		return invalidJSON(err)
	}
	c.close(name)
	return nil
}

func (c *jsonToXML) leaf(name, attrs, text string) error {
	if err := checkXMLText(text); err != nil {
		return err
	}
	c.open(name, attrs)
	xml.EscapeText(&c.out, []byte(text)) // writes to a bytes.Buffer: no error
	c.close(name)
	return nil
}

func (c *jsonToXML) open(name, attrs string) {
	c.out.WriteByte('<')
	c.out.WriteString(name)
	c.out.WriteString(attrs)
	c.out.WriteByte('>')
}

func (c *jsonToXML) close(name string) {
	c.out.WriteString("</")
	c.out.WriteString(name)
	c.out.WriteByte('>')
}

func (c *jsonToXML) empty(name, attrs string) {
	c.out.WriteByte('<')
	c.out.WriteString(name)
	c.out.WriteString(attrs)
	c.out.WriteString("/>")
}

// hint formats the attribute json:name="value", value escaped.
func hint(name, value string) string {
	var b strings.Builder
	b.WriteString(" " + hintPrefix + ":" + name + `="`)
	xml.EscapeText(&b, []byte(value)) // a strings.Builder never fails
	b.WriteByte('"')
	return b.String()
}

// invalidJSON turns a decoder error into an InputError; nil stays nil.
func invalidJSON(err error) error {
	if err == nil {
		return nil
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return inputErrorf("invalid JSON: unexpected end of input")
	}
	return inputErrorf("invalid JSON: %v", err)
}

// checkXMLText rejects characters XML 1.0 cannot hold, even escaped.
func checkXMLText(s string) error {
	for _, r := range s {
		if !xmlChar(r) {
			return inputErrorf("character %U cannot be represented in XML 1.0", r)
		}
	}
	return nil
}

func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
