package transform

import (
	"bytes"
	"encoding/json/jsontext"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// node is one parsed XML element.
type node struct {
	name     string
	attrs    []xml.Attr // the document's own attributes (no hints, no xmlns)
	typ      string     // json:type
	key      string     // json:key
	keyed    bool
	array    bool // json:array="true"
	children []*node
	text     strings.Builder
}

// XMLToJSON converts one XML document to JSON (see the package
// documentation for the mapping) within LimitsFor(DefaultMaxBodyBytes).
// It fails with an InputError when in is not a single well-formed UTF-8
// XML document, nests deeper than MaxDepth, or carries a type hint its
// content contradicts; with a LimitError when the conversion crosses a
// limit.
func XMLToJSON(in []byte) ([]byte, error) {
	return LimitsFor(DefaultMaxBodyBytes).XMLToJSON(in)
}

// XMLToJSON converts like the package's XMLToJSON within l. The document is
// read token by token into a tree of at most l.MaxElements elements and
// attributes, then encoded into a buffer that never holds more than
// l.MaxOutputBytes; the conversion stops with a LimitError at the first
// bound crossed.
func (l Limits) XMLToJSON(in []byte) ([]byte, error) {
	out, err := l.xmlToJSON(in)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.buf, []byte("\n")), nil
}

// xmlToJSON converts in into the returned buffer (ending with a newline),
// which holds what was written when the conversion failed.
func (l Limits) xmlToJSON(in []byte) (*boundedBuffer, error) {
	// One byte of slack: the encoder ends the document with a newline,
	// which XMLToJSON trims.
	out := newBoundedBuffer(l.MaxOutputBytes, 1, "JSON", len(in))
	root, err := parseXML(in, l)
	if err != nil {
		return out, err
	}
	if err := writeValue(jsontext.NewEncoder(out), root); err != nil {
		if out.err != nil {
			return out, out.err
		}
		return out, encodeError(err)
	}
	return out, nil
}

// parseXML reads the document's root element into a tree, within l's
// element count and name length.
func parseXML(in []byte, l Limits) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(in))
	var stack []*node
	var root *node
	count := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, inputErrorf("invalid XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, inputErrorf("invalid XML: more than one root element")
			}
			if len(stack) >= MaxDepth {
				return nil, inputErrorf("XML nested deeper than %d levels", MaxDepth)
			}
			n, err := newNode(t, l.MaxNameBytes)
			if err != nil {
				return nil, err
			}
			if count += 1 + len(n.attrs); count > l.MaxElements {
				return nil, limitErrorf("the body has more than %d XML elements and attributes", l.MaxElements)
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1] // the decoder checks that tags match
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, inputErrorf("invalid XML: text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, inputErrorf("invalid XML: no root element")
	}
	return root, nil
}

// newNode keeps the element's local name, its own attributes and its type
// hints (attributes in NamespaceURI, or with an undeclared "json" prefix).
// It fails with a LimitError when a name it keeps (the element's, an
// attribute's, json:key) is longer than maxName bytes.
func newNode(t xml.StartElement, maxName int) (*node, error) {
	n := &node{name: t.Name.Local}
	if err := checkName("an element name", n.name, maxName); err != nil {
		return nil, err
	}
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns":
		case a.Name.Space == NamespaceURI || a.Name.Space == hintPrefix:
			n.setHint(a.Name.Local, a.Value)
		default:
			if err := checkName("an attribute name", a.Name.Local, maxName); err != nil {
				return nil, err
			}
			n.attrs = append(n.attrs, a)
		}
	}
	return n, checkName("a json:key", n.key, maxName)
}

// checkName fails with a LimitError when name is longer than max bytes.
func checkName(what, name string, max int) error {
	if len(name) > max {
		return limitErrorf("%s has %d bytes, more than %d", what, len(name), max)
	}
	return nil
}

// setHint records one type hint; unknown hint names are ignored.
func (n *node) setHint(name, value string) {
	switch name {
	case typeAttr:
		n.typ = value
	case keyAttr:
		n.key, n.keyed = value, true
	case arrayAttr:
		n.array = value == "true"
	}
}

// writeValue writes n's JSON value.
func writeValue(enc *jsontext.Encoder, n *node) error {
	text := n.text.String()
	switch typ := n.typ; typ {
	case "":
		if len(n.children) == 0 && len(n.attrs) == 0 {
			return enc.WriteToken(jsontext.String(text))
		}
		return writeObject(enc, n)
	case typeString:
		return enc.WriteToken(jsontext.String(text))
	case typeNull:
		return enc.WriteToken(jsontext.Null)
	case typeBoolean:
		switch strings.TrimSpace(text) {
		case "true":
			return enc.WriteToken(jsontext.True)
		case "false":
			return enc.WriteToken(jsontext.False)
		}
		return inputErrorf("element <%s>: %q is not a boolean", n.name, strings.TrimSpace(text))
	case typeNumber:
		v := jsontext.Value(strings.TrimSpace(text))
		if !v.IsValid() || v.Kind() != '0' {
			return inputErrorf("element <%s>: %q is not a JSON number", n.name, strings.TrimSpace(text))
		}
		return enc.WriteValue(v)
	case typeObject:
		return writeObject(enc, n)
	case typeArray:
		return writeArray(enc, n.children)
	default:
		return inputErrorf("element <%s>: unknown json:type %q", n.name, typ)
	}
}

// writeObject writes n as an object: "@attr" members, then one member per
// distinct child name in order of first appearance (an array when the name
// repeats or a child is marked json:array), then "#text".
func writeObject(enc *jsontext.Encoder, n *node) error {
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return encodeError(err)
	}
	for _, a := range n.attrs {
		if err := writeMember(enc, "@"+a.Name.Local, jsontext.String(a.Value)); err != nil {
			return err
		}
	}
	order, groups := groupChildren(n.children)
	for _, key := range order {
		g := groups[key]
		if err := enc.WriteToken(jsontext.String(key)); err != nil {
			return encodeError(err)
		}
		var err error
		if len(g) > 1 || g[0].array {
			err = writeArray(enc, g)
		} else {
			err = writeValue(enc, g[0])
		}
		if err != nil {
			return err
		}
	}
	if t := strings.TrimSpace(n.text.String()); t != "" && (len(n.children) > 0 || len(n.attrs) > 0) {
		if err := writeMember(enc, "#text", jsontext.String(t)); err != nil {
			return err
		}
	}
	return encodeError(enc.WriteToken(jsontext.EndObject))
}

// groupChildren groups children by member name (json:key, else the element
// name), keeping the order in which names first appear.
func groupChildren(children []*node) ([]string, map[string][]*node) {
	var order []string
	groups := make(map[string][]*node, len(children))
	for _, c := range children {
		key := c.name
		if c.keyed {
			key = c.key
		}
		if _, seen := groups[key]; !seen {
			order = append(order, key)
		}
		groups[key] = append(groups[key], c)
	}
	return order, groups
}

func writeArray(enc *jsontext.Encoder, items []*node) error {
	if err := enc.WriteToken(jsontext.BeginArray); err != nil {
		return encodeError(err)
	}
	for _, it := range items {
		if err := writeValue(enc, it); err != nil {
			return err
		}
	}
	return encodeError(enc.WriteToken(jsontext.EndArray))
}

func writeMember(enc *jsontext.Encoder, key string, v jsontext.Token) error {
	if err := enc.WriteToken(jsontext.String(key)); err != nil {
		return encodeError(err)
	}
	return encodeError(enc.WriteToken(v))
}

// encodeError reports an encoder failure (a duplicate member name, such
// as an attribute and a json:key spelling the same "@name") as input that
// cannot be converted.
func encodeError(err error) error {
	if err == nil {
		return nil
	}
	var ie *InputError
	if errors.As(err, &ie) {
		return err
	}
	return inputErrorf("cannot convert to JSON: %v", err)
}
