// Package transform converts message bodies between JSON and XML and serves
// the conversion to Envoy as an external processor
// (envoy.service.ext_proc.v3.ExternalProcessor).
//
// # The JSON ↔ XML mapping
//
// JSON → XML (JSONToXML) writes an XML 1.0 document in UTF-8 whose root
// element (named by the route, "root" by default) holds the JSON value and
// declares the namespace NamespaceURI with the prefix "json". Type hints
// live in that namespace, so they never collide with a document's own
// attributes:
//
//   - a string is the element's text: {"a":"x"} → <a>x</a>;
//   - a number keeps its literal and gets json:type="number":
//     {"n":1.50} → <n json:type="number">1.50</n>;
//   - true and false get json:type="boolean", null an empty element with
//     json:type="null";
//   - an object's members become child elements in the object's order;
//     an empty object is an empty element with json:type="object";
//   - an array that is an object member becomes one element per item,
//     each named after the member and marked json:array="true":
//     {"t":["a","b"]} → <t json:array="true">a</t><t json:array="true">b</t>;
//     an empty one is a single empty element with json:type="array";
//   - any other array (the document itself, an array in an array) is an
//     element with json:type="array" whose children, named "item", are the
//     items;
//   - a member name that is not a plain XML name (ASCII letter or "_"
//     first, then letters, digits, "_", "-" or "."; not starting with
//     "xml") becomes an element named "member" holding the name in
//     json:key: {"1 a":1} → <member json:key="1 a" json:type="number">1</member>;
//   - text is escaped (&, <, >, quotes, tab, CR and LF as character
//     references, so they survive a round trip). A string with a character
//     XML 1.0 cannot hold (a control character other than tab, CR and LF)
//     is an error.
//
// XML → JSON (XMLToJSON) reads any well-formed UTF-8 XML document and
// honours the hints above when present:
//
//   - the root element's value is the JSON document (its name is dropped);
//   - json:type gives the type (number and boolean text must be a JSON
//     number or true/false, else the body is malformed); json:type="array"
//     makes the children the items, whatever their names;
//   - without a hint, an element with neither child elements nor attributes
//     is a string (its text, exactly); otherwise it is an object: its
//     attributes first, as "@name" string members, then one member per
//     distinct child name, in order of first appearance. Children that share
//     a name, or carry json:array="true", form an array. Text beside child
//     elements becomes the "#text" member (trimmed);
//   - namespace prefixes are dropped (local names are used), xmlns
//     declarations, comments, processing instructions and the DOCTYPE are
//     ignored, CDATA is text. Entities other than the five predefined ones
//     and character references are errors, so nothing is fetched or
//     expanded.
//
// Round trip: for every JSON document whose strings hold only characters
// XML 1.0 allows, XMLToJSON(JSONToXML(v)) equals v: same members in the
// same order, same number literals (FuzzRoundTrip checks it). Duplicate
// member names and invalid UTF-8 are malformed JSON.
//
// Both directions reject nesting deeper than MaxDepth (an InputError).
//
// # Bounds
//
// A conversion never uses more than a fixed amount of memory, whatever the
// input: both directions read their input token by token and write their
// output into a buffer that refuses to grow past the output bound, and
// stop with a LimitError at the first bound crossed (Limits, LimitsFor).
// For a route whose bodies are bounded by maxBodyBytes (1 MiB by default
// and at most), the converted body is at most OutputFactor (4) times
// maxBodyBytes; a JSON member name, an XML element or attribute name and a
// json:key are at most MaxNameBytes (1024) bytes; a conversion writes or
// reads at most MaxElements (131072) elements, XML attributes that become
// "@name" members included. JSON → XML would otherwise amplify without
// limit (a member name is repeated for every item of its array value);
// XML → JSON builds a tree, about 160 bytes of heap per element, so at
// most about 20 MiB.
//
// The service answers a body over a bound like a body over maxBodyBytes:
// 413 body_too_large for a request, 502 upstream_too_large for a response.
package transform
