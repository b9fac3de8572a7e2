package translator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// compressor is one compressor filter of a gateway: one algorithm of one
// distinct compression setting. Envoy cannot change a compressor's minimum
// length or content types per route, so each setting the gateway's routes
// use gets its own filters, and every route turns off the ones that are not
// its own.
type compressor struct {
	key  string // settingsKey of the setting
	opts envoy.CompressorOptions
}

// compressorsOf returns the gateway's compressors, sorted by name (so by
// setting, brotli before gzip); brotli is preferred on an Accept-Encoding
// tie.
func compressorsOf(gw *ir.Gateway) ([]compressor, error) {
	algos := map[string]map[string]bool{} // setting key -> algorithms used
	settings := map[string]*ir.Compression{}
	var err error
	gw.EachRoute(func(r *ir.Route) {
		c := r.HTTPRules().Compression
		if c == nil {
			return
		}
		key := settingsKey(c)
		if algos[key] == nil {
			algos[key], settings[key] = map[string]bool{}, c
		}
		for _, a := range c.Algorithms {
			if a != ir.Brotli && a != ir.Gzip && err == nil {
				err = fmt.Errorf("route %q: unknown compression algorithm %q", r.Name, a)
			}
			algos[key][a] = true
		}
	})
	var out []compressor
	for key, set := range algos {
		for a := range set {
			c := settings[key]
			out = append(out, compressor{key: key, opts: envoy.CompressorOptions{
				Name: envoy.CompressorName + "." + a + "." + key, Algorithm: a,
				MinLength: c.MinLength, ContentTypes: c.ContentTypes, ChooseFirst: a == ir.Brotli,
			}})
		}
	}
	slices.SortFunc(out, func(a, b compressor) int { return strings.Compare(a.opts.Name, b.opts.Name) })
	return out, err
}

// settingsKey is a short hash of a compression setting: equal settings
// share filters, and a filter's name does not depend on route order.
func settingsKey(c *ir.Compression) string {
	b, _ := json.Marshal(ir.Compression{MinLength: c.MinLength, ContentTypes: c.ContentTypes}) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:4])
}

// configureCompression turns off, on er, every compressor that is not one
// of c's algorithms with c's setting.
func (t *httpFeatures) configureCompression(er *routev3.Route, c *ir.Compression) error {
	for _, comp := range t.compressors {
		if c != nil && comp.key == settingsKey(c) && slices.Contains(c.Algorithms, comp.opts.Algorithm) {
			continue
		}
		if err := envoy.SetRouteFilterConfig(er, comp.opts.Name, envoy.CompressorPerRouteDisabled()); err != nil {
			return err
		}
	}
	return nil
}
