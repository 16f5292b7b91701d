package kubernetes

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/finding"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/policy"
)

// Hit is one place a check fails.
type Hit struct {
	// Path is the field path of the offending field (or, when the field is
	// missing, of the one that should hold it).
	Path    string
	Message string
	// Container names the container the hit is about, if any.
	Container string
	// Detail is the admission plugin's reason, for PSS checks.
	Detail string

	sysctl string
}

// Level of the Pod Security Standards a check belongs to.
type Level string

const (
	LevelNone       Level = ""
	LevelBaseline   Level = "baseline"
	LevelRestricted Level = "restricted"
)

// Check is one built-in check.
type Check struct {
	ID       string
	Title    string
	Severity finding.Severity
	// Level is the PSS level the control belongs to; empty for the checks
	// beyond the PSS.
	Level Level
	// PSS is the pod-security-admission check that rules, for PSS controls.
	PSS  policy.CheckID
	Fix  string
	Link string

	run func(o *Object, sc *streamContext) []Hit
}

const (
	pssLink      = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
	secCtxLink   = "https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"
	resourceLink = "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"
)

// Checks is the catalogue of built-in checks, in ID order.
var Checks = []*Check{
	{ID: "BH-K8S-001", PSS: "windowsHostProcess", Level: LevelBaseline, Severity: finding.High,
		Title: "Windows HostProcess container", Fix: "Remove securityContext.windowsOptions.hostProcess (or set it false).", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-002", PSS: "hostNamespaces", Level: LevelBaseline, Severity: finding.High,
		Title: "Pod shares the host's network, PID or IPC namespace", Fix: "Remove hostNetwork, hostPID and hostIPC (or set them false).", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-003", PSS: "privileged", Level: LevelBaseline, Severity: finding.High,
		Title: "Privileged container", Fix: "Remove securityContext.privileged (or set it false); add only the capabilities the container needs.", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-004", PSS: "capabilities_baseline", Level: LevelBaseline, Severity: finding.High,
		Title: "Container adds capabilities beyond the default set", Fix: "Remove the capability from securityContext.capabilities.add.", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-005", PSS: "hostPathVolumes", Level: LevelBaseline, Severity: finding.High,
		Title: "hostPath volume", Fix: "Use a persistentVolumeClaim, emptyDir, configMap or secret volume instead of hostPath.", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-006", PSS: "hostPorts", Level: LevelBaseline, Severity: finding.Medium,
		Title: "Container binds a host port", Fix: "Remove ports[].hostPort; expose the port through a Service.", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-007", PSS: "appArmorProfile", Level: LevelBaseline, Severity: finding.Medium,
		Title: "AppArmor profile disabled", Fix: "Set appArmorProfile.type to RuntimeDefault or Localhost (or remove the unconfined annotation).", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-008", PSS: "seLinuxOptions", Level: LevelBaseline, Severity: finding.Medium,
		Title: "Custom SELinux user, role or type", Fix: "Remove seLinuxOptions.user and .role; use a container_t, container_init_t, container_kvm_t or container_engine_t type.", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-009", PSS: "procMount", Level: LevelBaseline, Severity: finding.Medium,
		Title: "Unmasked /proc mount", Fix: "Remove securityContext.procMount (or set it to Default).", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-010", PSS: "seccompProfile_baseline", Level: LevelBaseline, Severity: finding.Medium,
		Title: "Seccomp disabled (Unconfined)", Fix: "Set seccompProfile.type to RuntimeDefault.", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-011", PSS: "sysctls", Level: LevelBaseline, Severity: finding.Medium,
		Title: "Unsafe sysctl", Fix: "Remove the sysctl from securityContext.sysctls; only the namespaced safe set is allowed.", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-012", PSS: "hostProbesAndHostLifecycle", Level: LevelBaseline, Severity: finding.Medium,
		Title: "Probe or lifecycle hook targets another host", Fix: "Remove host from the probe's or hook's httpGet/tcpSocket; probes target the pod itself.", Link: pssLink + "#baseline"},
	{ID: "BH-K8S-020", PSS: "restrictedVolumes", Level: LevelRestricted, Severity: finding.Low,
		Title: "Volume type not allowed at restricted", Fix: "Use configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret volumes.", Link: pssLink + "#restricted"},
	{ID: "BH-K8S-021", PSS: "allowPrivilegeEscalation", Level: LevelRestricted, Severity: finding.Medium,
		Title: "Privilege escalation allowed", Fix: "Set securityContext.allowPrivilegeEscalation: false on the container.", Link: pssLink + "#restricted"},
	{ID: "BH-K8S-022", PSS: "runAsNonRoot", Level: LevelRestricted, Severity: finding.Medium,
		Title: "Container may run as root", Fix: "Set securityContext.runAsNonRoot: true on the pod or container (and build the image with a non-root USER).", Link: pssLink + "#restricted"},
	{ID: "BH-K8S-023", PSS: "runAsUser", Level: LevelRestricted, Severity: finding.Medium,
		Title: "Runs as UID 0", Fix: "Set securityContext.runAsUser to a non-zero UID (or remove it and set runAsNonRoot: true).", Link: pssLink + "#restricted"},
	{ID: "BH-K8S-024", PSS: "seccompProfile_restricted", Level: LevelRestricted, Severity: finding.Low,
		Title: "No seccomp profile", Fix: "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.", Link: pssLink + "#restricted"},
	{ID: "BH-K8S-025", PSS: "capabilities_restricted", Level: LevelRestricted, Severity: finding.Low,
		Title: "Capabilities not dropped", Fix: `Set securityContext.capabilities.drop: ["ALL"] and add back only NET_BIND_SERVICE if needed.`, Link: pssLink + "#restricted"},
	{ID: "BH-K8S-026", PSS: "procMount_restricted", Level: LevelRestricted, Severity: finding.Medium,
		Title: "Unmasked /proc mount", Fix: "Remove securityContext.procMount (or set it to Default).", Link: pssLink + "#restricted"},

	{ID: "BH-K8S-101", Severity: finding.Low, Title: "Root filesystem is writable",
		Fix: "Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where the app writes.", Link: secCtxLink, run: checkReadOnlyRoot},
	{ID: "BH-K8S-102", Severity: finding.Low, Title: "No CPU limit",
		Fix: "Set resources.limits.cpu.", Link: resourceLink, run: checkLimit(corev1.ResourceCPU)},
	{ID: "BH-K8S-103", Severity: finding.Low, Title: "No memory limit",
		Fix: "Set resources.limits.memory.", Link: resourceLink, run: checkLimit(corev1.ResourceMemory)},
	{ID: automountCheckID, Severity: finding.Low, Title: "Service account token mounted automatically",
		Fix:  "Set automountServiceAccountToken: false on the pod spec (or the ServiceAccount) unless the pod calls the API server.",
		Link: "https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#opt-out-of-api-credential-automounting", run: checkAutomount},
	{ID: "BH-K8S-105", Severity: finding.Medium, Title: "Image without a tag or with latest",
		Fix: "Pin the image to a version tag, better to a digest (image@sha256:...).", Link: "https://kubernetes.io/docs/concepts/containers/images/#image-names", run: checkImageTag},
	{ID: "BH-K8S-106", Severity: finding.Low, Title: "Image not pinned by digest",
		Fix: "Reference the image by digest (image:tag@sha256:...) so every node runs the same bytes.", Link: "https://kubernetes.io/docs/concepts/containers/images/#image-names", run: checkImageDigest},
	{ID: "BH-K8S-107", Severity: finding.High, Title: "Secret passed as a literal environment value",
		Fix: "Move the value into a Secret and reference it with env[].valueFrom.secretKeyRef.", Link: "https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-environment-variables", run: checkEnvSecrets},
	{ID: "BH-K8S-109", Severity: finding.Medium, Title: "Container runs as root",
		Fix: "Set securityContext.runAsUser to a non-zero UID and runAsNonRoot: true (on the pod or the container).", Link: secCtxLink, run: checkRunsAsRoot},
	{ID: "BH-K8S-110", Severity: finding.Critical, Title: "Container runtime socket mounted",
		Fix: "Remove the hostPath volume of the runtime socket; a container with it controls the node.", Link: "https://kubernetes.io/docs/concepts/storage/volumes/#hostpath", run: checkRuntimeSocket},
	{ID: SecretEnvCheckID, Severity: finding.Low, Title: "Secret passed in an environment variable",
		Fix:  "Mount the Secret as a volume (secret or projected volume, or the Secrets Store CSI driver) and read the file: environment variables are inherited by child processes, readable in /proc/<pid>/environ and often dumped into logs and crash reports.",
		Link: "https://kubernetes.io/docs/concepts/security/secrets-good-practices/", run: checkSecretEnv},
	{ID: "BH-K8S-108", Severity: finding.Medium, Title: "Secret with data committed in a manifest",
		Fix:  "Keep secret values out of the repository: use an external secret store (External Secrets, Sealed Secrets, SOPS) and rotate the committed values.",
		Link: "https://kubernetes.io/docs/concepts/security/secrets-good-practices/", run: checkSecretObject},
}

// CheckByID finds a built-in check.
func CheckByID(id string) *Check {
	for _, c := range Checks {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func checkReadOnlyRoot(o *Object, _ *streamContext) []Hit {
	if o.Pod == nil {
		return nil
	}
	var hits []Hit
	for _, c := range o.Pod.Containers() {
		if c.Type == "ephemeralContainer" {
			continue // debugging containers are attached by hand, not deployed
		}
		if sc := c.C.SecurityContext; sc == nil || !isTrue(sc.ReadOnlyRootFilesystem) {
			hits = append(hits, containerHit(c, ".securityContext.readOnlyRootFilesystem", "does not set readOnlyRootFilesystem=true"))
		}
	}
	return hits
}

func checkLimit(res corev1.ResourceName) func(o *Object, _ *streamContext) []Hit {
	return func(o *Object, _ *streamContext) []Hit {
		if o.Pod == nil {
			return nil
		}
		var hits []Hit
		for _, c := range o.Pod.Containers() {
			if c.Type == "ephemeralContainer" {
				continue // ephemeral containers may not set resources
			}
			if _, ok := c.C.Resources.Limits[res]; !ok {
				hits = append(hits, containerHit(c, ".resources.limits."+string(res), "has no "+string(res)+" limit"))
			}
		}
		return hits
	}
}

// automountCheckID is checkAutomount's ID: a Stream holds these findings
// until the stream's ServiceAccounts are known.
const automountCheckID = "BH-K8S-104"

// checkAutomount reports a service account token mounted into pods that
// do not seem to need it. The heuristic for "the pod calls the API
// server": the manifests bind its service account to a Role or
// ClusterRole that grants more than discovery (needsAPI). A pod whose
// account no binding of the manifests names gets only what every
// identity has, so its token serves an attacker in the container, not the
// pod; one whose account is bound keeps its token without a finding.
func checkAutomount(o *Object, sc *streamContext) []Hit {
	if o.Kind == "ServiceAccount" {
		if v, ok := o.Raw["automountServiceAccountToken"].(bool); !ok || v {
			if sc.needsAPI(o.Meta.Namespace, o.Meta.Name, true) {
				return nil
			}
			return []Hit{{Path: Field(o.Path, "automountServiceAccountToken"), Message: fmt.Sprintf("ServiceAccount %q mounts its token into every pod, and no binding in these manifests grants it anything", o.Meta.Name)}}
		}
		return nil
	}
	if o.Pod == nil || o.Kind == "PodTemplate" {
		return nil
	}
	sa := o.Pod.Spec.ServiceAccountName
	if sa == "" {
		sa = o.Pod.Spec.DeprecatedServiceAccount
	}
	if sa == "" {
		sa = "default"
	}
	a := o.Pod.Spec.AutomountServiceAccountToken
	podSet := a != nil
	if a == nil {
		// the pod's field wins; unset, the ServiceAccount's decides
		// (kubelet semantics), when the stream defines that account
		a = sc.serviceAccountAutomount(o.Meta.Namespace, sa)
	}
	if a == nil || *a {
		if sc.needsAPI(o.Meta.Namespace, sa, podSet) {
			return nil
		}
		return []Hit{{Path: o.Pod.SpecPath + ".automountServiceAccountToken", Message: fmt.Sprintf("pod mounts the token of service account %q, which no binding in these manifests grants anything (the pod seems not to call the API)", sa)}}
	}
	return nil
}

// splitImage returns an image reference's tag and digest.
func splitImage(ref string) (tag, digest string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref, digest = ref[:i], ref[i+1:]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		tag = ref[i+1:]
	}
	return tag, digest
}

func checkImageTag(o *Object, _ *streamContext) []Hit {
	if o.Pod == nil {
		return nil
	}
	var hits []Hit
	for _, c := range o.Pod.Containers() {
		if c.C.Image == "" || isTemplated(c.C.Image) {
			continue
		}
		tag, digest := splitImage(c.C.Image)
		if digest != "" {
			continue
		}
		if tag == "" || tag == "latest" {
			hits = append(hits, containerHit(c, ".image", fmt.Sprintf("uses image %s without a fixed tag", c.C.Image)))
		}
	}
	return hits
}

func checkImageDigest(o *Object, _ *streamContext) []Hit {
	if o.Pod == nil {
		return nil
	}
	var hits []Hit
	for _, c := range o.Pod.Containers() {
		if c.C.Image == "" || isTemplated(c.C.Image) {
			continue
		}
		if _, digest := splitImage(c.C.Image); digest == "" {
			hits = append(hits, containerHit(c, ".image", fmt.Sprintf("uses image %s without a digest", c.C.Image)))
		}
	}
	return hits
}

// isTemplated spots unrendered template placeholders ("{{ .Values.image }}",
// "${IMAGE}"): what they become is not in the manifest.
func isTemplated(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "${") || strings.Contains(s, "$(")
}

// secretName matches environment variable names that hold credentials.
var secretName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)(PASSW(OR)?D|PASSWD|PWD$|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH_?KEY)`)
})

// notSecretName are names that match secretName but hold a reference or a
// setting, not the secret itself.
var notSecretName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)(_FILE|_PATH|_DIR|_NAME|_TTL|_TIMEOUT|_EXPIRY|_EXPIRATION|_LENGTH|_URL|_ENDPOINT|_TYPE|_ENABLED|_HEADER|_ID|_USER(NAME)?|_KEY_ID|_REF|_SECRET_REF|_PORT|_HOST|_MODE|_POLICY)$`)
})

// placeholderValue are values that are clearly not the secret.
var placeholderValue = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)^(|true|false|yes|no|none|null|changeme|change_me|<.*>|\*+|x+|-+|\$\(.*\)|\$\{.*\}|\{\{.*\}\}|/.*|[0-9]{1,4}|(insert|replace|your|enter|add|put)[-_ ].*|.*[-_ ]here)$`)
})

func checkEnvSecrets(o *Object, _ *streamContext) []Hit {
	if o.Pod == nil {
		return nil
	}
	var hits []Hit
	for _, c := range o.Pod.Containers() {
		for i, e := range c.C.Env {
			if e.ValueFrom != nil || !secretName().MatchString(e.Name) || notSecretName().MatchString(e.Name) {
				continue
			}
			if placeholderValue().MatchString(strings.TrimSpace(e.Value)) {
				continue
			}
			hits = append(hits, containerHit(c, fmt.Sprintf(".env[%d].value", i), fmt.Sprintf("sets %s to a literal value", e.Name)))
		}
	}
	return hits
}

// SecretEnvCheckID is checkSecretEnv's ID.
const SecretEnvCheckID = "BH-K8S-111"

// checkSecretEnv reports a Secret's value handed to a container in an
// environment variable (env[].valueFrom.secretKeyRef, envFrom[].secretRef)
// where a mounted file would do. Informational: the value is in a Secret,
// as it should be; only its delivery can be narrower.
func checkSecretEnv(o *Object, _ *streamContext) []Hit {
	if o.Pod == nil {
		return nil
	}
	var hits []Hit
	for _, c := range o.Pod.Containers() {
		for i, e := range c.C.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				hits = append(hits, containerHit(c, fmt.Sprintf(".env[%d].valueFrom.secretKeyRef", i), fmt.Sprintf("sets %s from key %s of Secret %s", e.Name, r.Key, r.Name)))
			}
		}
		for i, e := range c.C.EnvFrom {
			if e.SecretRef != nil {
				hits = append(hits, containerHit(c, fmt.Sprintf(".envFrom[%d].secretRef", i), fmt.Sprintf("takes every key of Secret %s as environment variables", e.SecretRef.Name)))
			}
		}
	}
	return hits
}

func checkSecretObject(o *Object, _ *streamContext) []Hit {
	if o.Kind != "Secret" {
		return nil
	}
	typ, _ := o.Raw["type"].(string)
	if typ == string(corev1.SecretTypeServiceAccountToken) {
		return nil // the token controller fills these in; the manifest holds none
	}
	var hits []Hit
	for _, field := range []string{"data", "stringData"} {
		m, _ := o.Raw[field].(map[string]any)
		for _, k := range sortedAnyKeys(m) {
			if s, _ := m[k].(string); strings.TrimSpace(s) == "" || isTemplated(s) {
				continue
			}
			hits = append(hits, Hit{Path: Field(Field(o.Path, field), k), Message: fmt.Sprintf("Secret %q holds %s.%s in the manifest", o.Meta.Name, field, k)})
		}
	}
	return hits
}

func sortedAnyKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sortStrings(ks)
	return ks
}

// checkRunsAsRoot judges the identity each container runs under from the
// security context the kubelet computes (container fields over the pod's):
// UID 0 runs as root; a non-zero UID does not; with no UID the image's USER
// decides, and only runAsNonRoot: true keeps root out.
func checkRunsAsRoot(o *Object, _ *streamContext) []Hit {
	if o.Pod == nil {
		return nil
	}
	var hits []Hit
	for _, c := range o.Pod.Containers() {
		eff := EffectiveSecurityContext(o.Pod.Spec.SecurityContext, c.C.SecurityContext)
		switch {
		case eff.RunAsUser != nil && *eff.RunAsUser == 0:
			hits = append(hits, containerHit(c, runAsField(o, c, "runAsUser"), "runs as UID 0"))
		case eff.RunAsUser == nil && !isTrue(eff.RunAsNonRoot):
			hits = append(hits, containerHit(c, runAsField(o, c, "runAsNonRoot"), "runs as root unless the image's USER is non-root (no runAsUser, no runAsNonRoot: true)"))
		}
	}
	return hits
}

// runAsField points at the field that decided, the container's or the pod's.
func runAsField(o *Object, c ContainerRef, field string) string {
	cp := c.Path + ".securityContext." + field
	if o.HasField(cp) {
		return cp[len(c.Path):]
	}
	if o.HasField(c.Path + ".securityContext") {
		return ".securityContext"
	}
	return ""
}

// runtimeSockets are the container runtimes' API sockets: mounting one
// gives the container the node.
var runtimeSockets = []string{"/var/run/docker.sock", "/run/docker.sock", "/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock",
	"/var/run/crio/crio.sock", "/run/crio/crio.sock", "/var/run/cri-dockerd.sock", "/run/podman/podman.sock", "/var/run/podman/podman.sock"}

func checkRuntimeSocket(o *Object, _ *streamContext) []Hit {
	if o.Pod == nil {
		return nil
	}
	var hits []Hit
	for i, v := range o.Pod.Spec.Volumes {
		if v.HostPath == nil {
			continue
		}
		p := strings.TrimRight(v.HostPath.Path, "/")
		for _, s := range runtimeSockets {
			if p == s || p+"/"+s[strings.LastIndex(s, "/")+1:] == s {
				hits = append(hits, Hit{Path: fmt.Sprintf("%s.volumes[%d].hostPath.path", o.Pod.SpecPath, i), Message: fmt.Sprintf("volume %q mounts the runtime socket %s", v.Name, v.HostPath.Path)})
				break
			}
		}
	}
	return hits
}
