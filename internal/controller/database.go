/*
Copyright 2026 The strategy-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strategyops/strategy-operator/internal/names"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

const (
	// ReasonConnectionFailed: the operator could not reach or prepare the database of a
	// database backend.
	ReasonConnectionFailed = "ConnectionFailed"
	// ReasonSecretRefused: the Secret a Strategy names for its database URL is missing, lacks
	// the key, or does not carry v1.ConnectionSecretLabel.
	ReasonSecretRefused = "ConnectionSecretRefused"
	// ReasonWritesMayBeLost: the database's persistence settings let a crash lose writes it
	// acknowledged (StoreDurable=False); ReasonDurable: they do not.
	ReasonWritesMayBeLost = "WritesMayBeLost"
	ReasonDurable         = "Durable"
)

// place is where a strategy's state lives: a backend, and for a database backend the
// Secret key of its URL (two Secrets may name two servers).
type place struct {
	backend v1.PersistenceBackend
	db      *v1.SecretKeyRef
}

func (p place) String() string {
	if p.db == nil {
		return string(p.backend)
	}
	return fmt.Sprintf("%s (Secret %s, key %s)", p.backend, p.db.Name, p.db.Key)
}

// same reports whether p and o are one place.
func (p place) same(o place) bool {
	return p.backend == o.backend && (p.db == nil) == (o.db == nil) && (p.db == nil || *p.db == *o.db)
}

// desiredPlace is where the spec of s says the state goes.
func desiredPlace(s *v1.Strategy, b v1.PersistenceBackend) place {
	p := place{backend: b}
	if db := s.Spec.Persistence.Database(b); db != nil {
		p.db = &db.URLSecretRef
	}
	return p
}

// errSecret marks an error about the connection Secret itself (ReasonSecretRefused).
var errSecret = errors.New("connection secret refused")

// databaseURL reads the URL at p.db. The Secret must carry v1.ConnectionSecretLabel: the
// operator hands no other Secret to a runner. The error never holds the URL.
func (r *StrategyReconciler) databaseURL(ctx context.Context, s *v1.Strategy, p place) (string, error) {
	if p.db == nil {
		return "", fmt.Errorf("%w: the %s backend names no Secret (spec.persistence)", errSecret, p.backend)
	}
	var secret corev1.Secret
	err := r.StateClient.Get(ctx, objectKey(s, p.db.Name), &secret)
	switch {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("%w: Secret %s/%s does not exist", errSecret, s.Namespace, p.db.Name)
	case err != nil:
		return "", objectErr("reading", &secret, err)
	case secret.Labels[v1.ConnectionSecretLabel] != "true":
		return "", fmt.Errorf("%w: Secret %s/%s does not carry the label %s=true, which lets Strategies use it",
			errSecret, s.Namespace, p.db.Name, v1.ConnectionSecretLabel)
	}
	url, ok := secret.Data[p.db.Key]
	if !ok || len(url) == 0 {
		return "", fmt.Errorf("%w: Secret %s/%s has no key %q", errSecret, s.Namespace, p.db.Name, p.db.Key)
	}
	return string(url), nil
}

// openState is the domain backend the operator reads and writes the state of s with at p,
// and what closes it. On a Kubernetes backend, create lets it make missing objects, which
// then record s as their owner.
func (r *StrategyReconciler) openState(ctx context.Context, s *v1.Strategy, p place, create bool) (
	domain.Backend, func(), error) {
	if domain.HomeOf(p.backend) != domain.InDatabase {
		b, err := domain.KubeBackend(p.backend, r.StateClient, domain.KubeOptions{Namespace: s.Namespace,
			Create: create, Labels: map[string]string{names.LabelOwner: string(s.UID)}})
		return b, func() {}, err
	}
	db, err := r.openDatabase(ctx, s, p)
	if err != nil {
		return nil, nil, err
	}
	return db.Backend(domain.NoFencing), db.Close, nil
}

// openDatabase connects to the database at p with the URL of its Secret.
func (r *StrategyReconciler) openDatabase(ctx context.Context, s *v1.Strategy, p place) (*domain.Database, error) {
	url, err := r.databaseURL(ctx, s, p)
	if err != nil {
		return nil, err
	}
	return domain.OpenDatabase(ctx, p.backend, url)
}

// checkDatabase connects to the database at p, prepares it for the contexts of s, makes s
// the owner recorded there (claimDatabase: an *ownedError when another is), and reports
// in StoreDurable whether its persistence settings keep acknowledged writes.
func (r *StrategyReconciler) checkDatabase(ctx context.Context, s *v1.Strategy, p place) error {
	ctx, cancel := withDeadline(ctx, p)
	defer cancel()
	// A replica's Secret passes the same test as the backend's before any pod names it. Its
	// server is not dialled: a replica that cannot be reached does not stop trading (the
	// runner retries it, and rebuilds it once it answers).
	for _, rep := range s.Spec.Persistence.Replicas {
		url, err := r.databaseURL(ctx, s, place{backend: rep.Backend, db: &rep.URLSecretRef})
		if err == nil {
			var db *domain.Database
			if db, err = domain.OpenDatabase(ctx, rep.Backend, url); err == nil { // a URL the runner can parse
				db.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("replica %s: %w", rep.Name, err)
		}
	}
	db, err := r.openDatabase(ctx, s, p)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Check(ctx, strategyContexts(s)); err != nil {
		return err
	}
	if err := r.claimDatabase(ctx, s, db, p); err != nil {
		return err
	}
	r.recordOnReplicas(ctx, s)
	loss, err := db.Durability(ctx)
	if err != nil {
		return err
	}
	if loss != "" {
		setCondition(s, v1.ConditionStoreDurable, false, ReasonWritesMayBeLost, fmt.Sprintf("%s may lose "+
			"acknowledged writes: %s", p, loss))
	} else {
		setCondition(s, v1.ConditionStoreDurable, true, ReasonDurable, fmt.Sprintf("%s keeps every write "+
			"it acknowledged through a crash of its server", p))
	}
	return nil
}

// databaseReason is the PersistenceReady reason for an error reaching the database.
func databaseReason(err error) string {
	if errors.Is(err, errSecret) {
		return ReasonSecretRefused
	}
	return ReasonConnectionFailed
}

// databaseTimeout bounds each of the operator's passes over a database (a connection that
// went silent must not hold a reconcile worker); databaseRetry is how soon a strategy whose
// database could not be used is tried again.
const (
	databaseTimeout = 30 * time.Second
	databaseRetry   = 15 * time.Second
)

// withDeadline bounds ctx by databaseTimeout when p is a database.
func withDeadline(ctx context.Context, p place) (context.Context, context.CancelFunc) {
	if domain.HomeOf(p.backend) != domain.InDatabase {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, databaseTimeout)
}

// moveOldArchives moves, in the database at p, what an older operator archived beside the
// live ledgers into the archive stores of s's symbols (domain.Database.MoveOldArchive):
// before the archives are copied elsewhere, and the source emptied.
func (r *StrategyReconciler) moveOldArchives(ctx context.Context, s *v1.Strategy, p place) error {
	db, err := r.openDatabase(ctx, s, p)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, c := range archiveContexts(s) {
		if err := db.MoveOldArchive(ctx, c.Key); err != nil {
			return err
		}
	}
	return nil
}

// archiveContexts are the history archive stores of s's symbols (databases only).
func archiveContexts(s *v1.Strategy) []domain.Context {
	out := make([]domain.Context, 0, len(s.Spec.Symbols))
	for _, sym := range s.Spec.Symbols {
		out = append(out, domain.Context{Domain: domain.HistoryArchive, Key: strategyKey(s, sym)})
	}
	return out
}

// deleteOwnedDatabaseState removes the state of s at p for retention Delete, only if s owns
// its state identity (its Lease names s): a Strategy refused as a duplicate deletes nothing
// of the owner's. A Secret gone meanwhile (the namespace being deleted) gives up, with a
// Warning event: the rows stay.
func (r *StrategyReconciler) deleteOwnedDatabaseState(ctx context.Context, s *v1.Strategy, p place) error {
	var lease coordinationv1.Lease
	err := r.StateClient.Get(ctx, objectKey(s, LeaseName(s)), &lease)
	if apierrors.IsNotFound(err) || err == nil && lease.Annotations[AnnotationOwnerUID] != string(s.UID) {
		return nil
	}
	if err != nil {
		return objectErr("reading", &lease, err)
	}
	contexts, err := r.ownedContexts(ctx, s) // not a risk profile it listed and another owns
	if err != nil {
		return err
	}
	err = r.deleteDatabaseState(ctx, s, p, append(contexts, archiveContexts(s)...))
	if errors.Is(err, errSecret) {
		r.event(s, corev1.EventTypeWarning, ReasonConnectionFailed, fmt.Sprintf("could not remove the state in %s, "+
			"which stays: %v", p, err))
		return nil
	}
	return err
}

// tendDatabase keeps the live ledgers of s in its database bounded, as tendStorage does on
// the Kubernetes backends: past spec.history.liveEntries, a symbol's oldest finished
// signals move to its archive store (domain.ArchiveLedger), which spec.history's
// retention then bounds. Best effort: a failure is logged and tried again on the next pass.
func (r *StrategyReconciler) tendDatabase(ctx context.Context, s *v1.Strategy, p place) {
	log := ctrl.LoggerFrom(ctx)
	db, err := r.openDatabase(ctx, s, p)
	if err != nil {
		log.Error(err, "Could not open the database to archive the ledgers")
		return
	}
	defer db.Close()
	for _, sym := range s.Spec.Symbols {
		actx, cancel := context.WithTimeout(ctx, archiveTimeout)
		k := strategyKey(s, sym)
		moved, err := db.ArchiveLedger(actx, k, s.EffectiveLiveEntries())
		pruned := 0
		if err == nil && moved > 0 {
			pruned, err = domain.PruneArchive(actx, db.Backend(domain.NoFencing), k, retention(s), time.Now())
		}
		cancel()
		r.archived(ctx, s, sym, moved, pruned, "its history archive in "+p.String(), err)
	}
}
