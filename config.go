package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Modes name what one tienda process runs.
const (
	modeAll       = "all"
	modeInventory = "inventory"
	modeCart      = "cart"
	modeGateway   = "gateway"
)

// config is everything a tienda process can be told. main fills it from
// flags, with TIENDA_* environment variables as the flags' defaults, and
// checks it before anything starts.
type config struct {
	Mode    string
	DataDir string

	GatewayAddr   string
	InventoryAddr string
	CartAddr      string

	// InventoryURLs and CartURLs are where the gateway finds the services
	// when they run in other processes. In all-in-one mode the gateway uses
	// the addresses the services actually listen on.
	InventoryURLs []string
	CartURLs      []string

	InventoryDSN string
	CartDSN      string

	SessionSecret  string
	CORSOrigins    []string
	ReservationTTL time.Duration
	LoadCatalog    bool

	LogFormat string
	LogLevel  slog.Level
}

// defaults are tienda's settings when neither a flag nor an environment
// variable says otherwise. Servers listen on loopback unless told to.
var defaults = config{
	Mode:           modeAll,
	DataDir:        "data",
	GatewayAddr:    "127.0.0.1:8080",
	InventoryAddr:  "127.0.0.1:8081",
	CartAddr:       "127.0.0.1:8082",
	InventoryURLs:  []string{"http://127.0.0.1:8081"},
	CartURLs:       []string{"http://127.0.0.1:8082"},
	ReservationTTL: 2 * time.Minute,
	LoadCatalog:    true,
	LogFormat:      "text",
	LogLevel:       slog.LevelInfo,
}

const usage = `tienda runs an online-shop backend: inventory, cart and a gateway.

Usage:
  tienda [flags]             run all three parts in one process
  tienda inventory [flags]   run only the inventory service
  tienda cart [flags]        run only the cart service
  tienda gateway [flags]     run only the gateway

Every flag can also be set with the environment variable named after it,
such as TIENDA_DATA_DIR for -data-dir. Flags win over the environment.

Flags:
`

// parseConfig reads args (without the program name) and the environment.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	cfg := defaults
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cfg.Mode, args = args[0], args[1:]
	}

	fs := flag.NewFlagSet("tienda", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usage)
		fs.PrintDefaults()
	}
	env := func(name string) string { return getenv("TIENDA_" + name) }
	var errs []error
	str := func(p *string, name, envName, help string) {
		if v := env(envName); v != "" {
			*p = v
		}
		fs.StringVar(p, name, *p, help+" ($TIENDA_"+envName+")")
	}
	list := func(p *[]string, name, envName, help string) {
		if v := env(envName); v != "" {
			*p = splitList(v)
		}
		def := ""
		if len(*p) > 0 {
			def = " (default " + strings.Join(*p, ",") + ")"
		}
		fs.Func(name, help+", comma-separated ($TIENDA_"+envName+")"+def, func(v string) error {
			*p = splitList(v)
			return nil
		})
	}

	str(&cfg.DataDir, "data-dir", "DATA_DIR", "directory for the embedded databases and the session key")
	str(&cfg.GatewayAddr, "gateway-addr", "GATEWAY_ADDR", "address the gateway listens on")
	str(&cfg.InventoryAddr, "inventory-addr", "INVENTORY_ADDR", "address the inventory service listens on")
	str(&cfg.CartAddr, "cart-addr", "CART_ADDR", "address the cart service listens on")
	list(&cfg.InventoryURLs, "inventory-url", "INVENTORY_URL",
		"inventory replicas that tienda gateway calls (all-in-one mode uses its own)")
	list(&cfg.CartURLs, "cart-url", "CART_URL",
		"cart replicas that tienda gateway calls (all-in-one mode uses its own)")
	str(&cfg.InventoryDSN, "inventory-dsn", "INVENTORY_DSN", "PostgreSQL DSN for inventory; empty uses SQLite")
	str(&cfg.CartDSN, "cart-dsn", "CART_DSN", "PostgreSQL DSN for the cart; empty uses SQLite")
	str(&cfg.SessionSecret, "session-secret", "SESSION_SECRET",
		"key that signs session tokens, at least 32 characters; empty keeps a generated one in the data directory")
	list(&cfg.CORSOrigins, "cors-origins", "CORS_ORIGINS", `browser origins allowed to call from elsewhere, or "*"`)
	str(&cfg.LogFormat, "log-format", "LOG_FORMAT", "log format: text or json")

	ttl := cfg.ReservationTTL.String()
	str(&ttl, "reservation-ttl", "RESERVATION_TTL",
		"how long checkout holds stock before it returns by itself, 1s to 1h")
	level := strings.ToLower(cfg.LogLevel.String())
	str(&level, "log-level", "LOG_LEVEL", "lowest level logged: debug, info, warn or error")
	catalog := strconv.FormatBool(cfg.LoadCatalog)
	str(&catalog, "load-catalog", "LOAD_CATALOG", "load the bundled catalog into an empty inventory")

	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q; see tienda -help", fs.Arg(0))
	}

	var err error
	if cfg.ReservationTTL, err = time.ParseDuration(ttl); err != nil {
		errs = append(errs, fmt.Errorf("reservation-ttl: %w", err))
		cfg.ReservationTTL = defaults.ReservationTTL // reported once, not twice
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		errs = append(errs, fmt.Errorf("log-level: %w", err))
	}
	if cfg.LoadCatalog, err = strconv.ParseBool(catalog); err != nil {
		errs = append(errs, fmt.Errorf("load-catalog: %w", err))
	}
	errs = append(errs, cfg.validate())
	return cfg, errors.Join(errs...)
}

// validate reports every setting that cannot work, so that a bad
// configuration fails at start-up with all its faults named at once.
func (c config) validate() error {
	var errs []error
	switch c.Mode {
	case modeAll, modeInventory, modeCart, modeGateway:
	default:
		errs = append(errs, fmt.Errorf("unknown part %q: want inventory, cart or gateway", c.Mode))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir: must not be empty"))
	}
	for name, urls := range map[string][]string{"inventory-url": c.InventoryURLs, "cart-url": c.CartURLs} {
		if len(urls) == 0 {
			errs = append(errs, fmt.Errorf("%s: need at least one URL", name))
		}
		for _, u := range urls {
			if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				errs = append(errs, fmt.Errorf("%s: %q is not an http:// URL", name, u))
			}
		}
	}
	for name, dsn := range map[string]string{"inventory-dsn": c.InventoryDSN, "cart-dsn": c.CartDSN} {
		if dsn != "" && !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
			errs = append(errs, fmt.Errorf("%s: want a postgres:// URL", name))
		}
	}
	if c.SessionSecret != "" && len(c.SessionSecret) < 32 {
		errs = append(errs, errors.New("session-secret: must be at least 32 characters"))
	}
	if c.ReservationTTL < time.Second || c.ReservationTTL > time.Hour {
		errs = append(errs, fmt.Errorf("reservation-ttl: %v is outside 1s..1h", c.ReservationTTL))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log-format: %q is neither text nor json", c.LogFormat))
	}
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
