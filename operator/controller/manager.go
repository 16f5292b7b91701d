package controller

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bulkhead-sec/bulkhead/deploy/crds"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
)

// Scheme holds the kinds the operator reads and writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// ManagerOptions configure the operator's manager.
type ManagerOptions struct {
	// Namespaces to watch (none: all).
	Namespaces []string
	// LeaderElection keeps one replica active (on in production).
	LeaderElection bool
	// LeaderElectionNamespace holds the Lease (required out of a cluster).
	LeaderElectionNamespace string
	// LeaderElectionID names the Lease.
	LeaderElectionID string
	// MetricsAddr serves /metrics ("0": off); HealthAddr /healthz and
	// /readyz ("0": off).
	MetricsAddr, HealthAddr string
}

// DefaultLeaderElectionID is the Lease the replicas compete for.
const DefaultLeaderElectionID = "bulkhead-operator.bulkhead.dev"

// NewManager makes the controller-runtime manager the operator runs in.
func NewManager(cfg *rest.Config, o ManagerOptions) (manager.Manager, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	if o.LeaderElectionID == "" {
		o.LeaderElectionID = DefaultLeaderElectionID
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "0"
	}
	if o.HealthAddr == "" {
		o.HealthAddr = "0"
	}
	// The cache holds every pod and workload watched: managed fields are
	// dropped before they are stored (memory on big clusters).
	co := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if len(o.Namespaces) > 0 {
		co.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			co.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	lease, renew, retry := 15*time.Second, 10*time.Second, 2*time.Second
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         co,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.HealthAddr,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &lease,
		RenewDeadline:                 &renew,
		RetryPeriod:                   &retry,
		Client:                        client.Options{Cache: &client.CacheOptions{}},
	})
	if err != nil {
		return nil, fmt.Errorf("operator manager: %w", err)
	}
	return mgr, nil
}

// InstallCRDs creates or updates the report CRDs (deploy/crds) and waits
// until the API server serves them.
func InstallCRDs(ctx context.Context, cfg *rest.Config) error {
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	all, err := crds.All()
	if err != nil {
		return err
	}
	for _, crd := range all {
		var cur apiextensionsv1.CustomResourceDefinition
		err := c.Get(ctx, client.ObjectKeyFromObject(crd), &cur)
		switch {
		case apierrors.IsNotFound(err):
			err = c.Create(ctx, crd)
		case err == nil:
			crd.ResourceVersion = cur.ResourceVersion
			err = c.Update(ctx, crd)
		}
		if err != nil {
			return fmt.Errorf("install CRD %s: %w", crd.Name, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, crd := range all {
		for {
			var cur apiextensionsv1.CustomResourceDefinition
			if err := c.Get(ctx, client.ObjectKeyFromObject(crd), &cur); err != nil {
				return err
			}
			if established(&cur) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after 30s", crd.Name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
