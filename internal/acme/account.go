package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
)

// account is one ACME account: a key and, once registered, its URL. It
// implements lego's registration.User.
type account struct {
	kv   KV
	path string // its entry in kv
	key  *ecdsa.PrivateKey

	regMu sync.Mutex // serialises registrations
	mu    sync.Mutex // guards file and its writes
	file  accountFile
}

var _ registration.User = (*account)(nil)

func (a *account) GetEmail() string             { return a.file.Email }
func (a *account) GetPrivateKey() crypto.Signer { return a.key }
func (a *account) GetRegistration() *legoacme.ExtendedAccount {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file.Location == "" {
		return nil
	}
	return &legoacme.ExtendedAccount{Location: a.file.Location}
}

// save writes the account file (the caller holds a.mu or owns a).
func (a *account) save() error {
	b, err := json.MarshalIndent(a.file, "", "  ")
	if err != nil {
		return fmt.Errorf("encode acme account: %w", err)
	}
	if err := a.kv.Put(a.path, b, 0); err != nil {
		return fmt.Errorf("store acme account: %w", err)
	}
	return nil
}

// ensureRegistered registers the account with the CA (agreeing to its terms
// of service) unless it already has an account URL, and stores the URL.
func (a *account) ensureRegistered(ctx context.Context, cfg *lego.Config) error {
	if a.GetRegistration() != nil {
		return nil
	}
	a.regMu.Lock()
	defer a.regMu.Unlock()
	if a.GetRegistration() != nil { // registered meanwhile by another Manager
		return nil
	}
	client, err := lego.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("acme client: %w", err)
	}
	reg, err := client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return fmt.Errorf("register acme account: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.file.Location = reg.Location
	return a.save()
}

// forget drops the account URL after the CA said the account does not
// exist (a CA whose database was reset): the next attempt registers again.
func (a *account) forget(err error) bool {
	var pd *legoacme.ProblemDetails
	if !errors.As(err, &pd) || pd.Type != legoacme.AccountDoesNotExistErrorType {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.file.Location = ""
	_ = a.save()
	return true
}
