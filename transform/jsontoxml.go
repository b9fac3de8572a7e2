package transform

import (
	"bytes"
	"encoding/json/jsontext"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

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
// ("" means DefaultRoot), within LimitsFor(DefaultMaxBodyBytes). It fails
// with an InputError when in is not exactly one valid JSON value
// (duplicate member names and invalid UTF-8 included) or holds what XML
// cannot, and when root is not an XML name; with a LimitError when the
// conversion crosses a limit.
func JSONToXML(in []byte, root string) ([]byte, error) {
	return LimitsFor(DefaultMaxBodyBytes).JSONToXML(in, root)
}

// JSONToXML converts like the package's JSONToXML within l. The output is
// written token by token into a buffer that never holds more than
// l.MaxOutputBytes; the conversion stops with a LimitError at the first
// element after a bound is crossed.
func (l Limits) JSONToXML(in []byte, root string) ([]byte, error) {
	out, err := l.jsonToXML(in, root)
	if err != nil {
		return nil, err
	}
	return out.buf, nil
}

// jsonToXML converts in into the returned buffer, which holds what was
// written when the conversion failed.
func (l Limits) jsonToXML(in []byte, root string) (*boundedBuffer, error) {
	if root == "" {
		root = DefaultRoot
	}
	out := newBoundedBuffer(l.MaxOutputBytes, 0, "XML", len(in)+len(in)/2+64)
	if !contract.PlainName(root) {
		return out, inputErrorf("root element name %q is not an XML name", root)
	}
	c := &jsonToXML{dec: jsontext.NewDecoder(bytes.NewReader(in)), out: out, lim: l}
	c.out.WriteString(xmlHeader)
	if err := c.element(tag{name: root, root: true}, 0); err != nil {
		return out, err
	}
	if c.out.err != nil {
		return out, c.out.err
	}
	if _, err := c.dec.ReadToken(); err != io.EOF {
		return out, inputErrorf("invalid JSON: unexpected data after the top-level value")
	}
	return out, nil
}

// jsonToXML converts a JSON token stream to XML.
type jsonToXML struct {
	dec      *jsontext.Decoder
	out      *boundedBuffer
	lim      Limits
	elements int    // elements written
	scratch  []byte // unquoted string values
}

// tag is an element about to be written: its name and the attributes that
// do not depend on its value.
type tag struct {
	name  string
	root  bool   // declares the hint namespace
	key   string // json:key, when keyed
	keyed bool
	array bool // json:array="true"
}

// element writes the next JSON value as the element t.
func (c *jsonToXML) element(t tag, depth int) error {
	if c.out.err != nil {
		return c.out.err
	}
	if depth > MaxDepth {
		return inputErrorf("JSON nested deeper than %d levels", MaxDepth)
	}
	switch c.dec.PeekKind() {
	case '{':
		return c.object(t, depth)
	case '[':
		return c.array(t, depth)
	}
	v, err := c.dec.ReadValue()
	if err != nil {
		return invalidJSON(err)
	}
	switch v.Kind() {
	case '"':
		var err error
		if c.scratch, err = jsontext.AppendUnquote(c.scratch[:0], v); err != nil {
			return invalidJSON(err)
		}
		return c.leaf(t, "", c.scratch)
	case '0':
		return c.leaf(t, typeNumber, v)
	case 't', 'f':
		return c.leaf(t, typeBoolean, v)
	default: // 'n'
		c.empty(t, typeNull)
		return nil
	}
}

// object writes a JSON object: one child per member, or an empty element
// marked as an object.
func (c *jsonToXML) object(t tag, depth int) error {
	if _, err := c.dec.ReadToken(); err != nil {
		return invalidJSON(err)
	}
	if c.dec.PeekKind() == '}' {
		c.dec.ReadToken()
		c.empty(t, typeObject)
		return nil
	}
	c.open(t, "")
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
	c.close(t.name)
	return nil
}

// member writes one object member: repeated elements for an array value,
// one element otherwise.
func (c *jsonToXML) member(key string, depth int) error {
	if err := checkName("a member name", key, c.lim.MaxNameBytes); err != nil {
		return err
	}
	t := tag{name: key}
	if !contract.PlainName(key) {
		if err := checkXMLText(key); err != nil {
			return err
		}
		t = tag{name: memberName, key: key, keyed: true}
	}
	if c.dec.PeekKind() != '[' {
		return c.element(t, depth)
	}
	if _, err := c.dec.ReadToken(); err != nil {
		return invalidJSON(err)
	}
	if c.dec.PeekKind() == ']' {
		c.dec.ReadToken()
		c.empty(t, typeArray)
		return nil
	}
	t.array = true
	for c.dec.PeekKind() != ']' {
		if err := c.element(t, depth+1); err != nil {
			return err
		}
	}
	_, err := c.dec.ReadToken()
	return invalidJSON(err)
}

// array writes an array that is not a member value: an element marked as
// an array, holding one "item" child per item.
func (c *jsonToXML) array(t tag, depth int) error {
	if _, err := c.dec.ReadToken(); err != nil {
		return invalidJSON(err)
	}
	if c.dec.PeekKind() == ']' {
		c.dec.ReadToken()
		c.empty(t, typeArray)
		return nil
	}
	c.open(t, typeArray)
	for c.dec.PeekKind() != ']' {
		if err := c.element(tag{name: itemName}, depth+1); err != nil {
			return err
		}
	}
	if _, err := c.dec.ReadToken(); err != nil {
		return invalidJSON(err)
	}
	c.close(t.name)
	return nil
}

// leaf writes an element holding text, with the type hint typ ("" for a
// string).
func (c *jsonToXML) leaf(t tag, typ string, text []byte) error {
	if err := checkXMLText(text); err != nil {
		return err
	}
	c.open(t, typ)
	xml.EscapeText(c.out, text) // an error stays in c.out.err
	c.close(t.name)
	return nil
}

func (c *jsonToXML) open(t tag, typ string) {
	c.startTag(t, typ)
	c.out.WriteByte('>')
}

func (c *jsonToXML) empty(t tag, typ string) {
	c.startTag(t, typ)
	c.out.WriteString("/>")
}

// startTag writes "<name" and the attributes: the namespace declaration
// on the root, then json:key, json:array and json:type as they apply.
func (c *jsonToXML) startTag(t tag, typ string) {
	if c.elements++; c.elements > c.lim.MaxElements {
		c.out.fail(limitErrorf("the converted body would have more than %d XML elements", c.lim.MaxElements))
	}
	c.out.WriteByte('<')
	c.out.WriteString(t.name)
	if t.root {
		c.out.WriteString(` xmlns:` + hintPrefix + `="` + NamespaceURI + `"`)
	}
	if t.keyed {
		c.out.WriteString(` ` + hintPrefix + `:` + keyAttr + `="`)
		xml.EscapeText(c.out, []byte(t.key))
		c.out.WriteByte('"')
	}
	if t.array {
		c.out.WriteString(` ` + hintPrefix + `:` + arrayAttr + `="true"`)
	}
	if typ != "" {
		c.out.WriteString(` ` + hintPrefix + `:` + typeAttr + `="`)
		c.out.WriteString(typ)
		c.out.WriteByte('"')
	}
}

func (c *jsonToXML) close(name string) {
	c.out.WriteString("</")
	c.out.WriteString(name)
	c.out.WriteByte('>')
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
func checkXMLText[T string | []byte](s T) error {
	for _, r := range string(s) {
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
