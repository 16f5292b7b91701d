package kubernetes

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// The Pod Security Standards verdicts are those of
// k8s.io/pod-security-admission/policy, the code the API server's admission
// plugin runs, so that "bulkhead says restricted" means "the cluster admits
// it at restricted". That package says which containers fail, not where;
// the locators below find the offending fields for the line numbers. When a
// locator finds nothing the package still rules, and the finding points at
// the pod spec.

// pssCheck is one PSS control selected for a level and version.
type pssCheck struct {
	id    policy.CheckID
	level api.Level
	fn    policy.CheckPodFn
	// overrides names the baseline controls this restricted one replaces
	// in the admission plugin.
	overrides []policy.CheckID
}

// selectPSS picks the checks the admission plugin runs at level and version.
// Where the plugin replaces a baseline control by a stricter restricted one
// (hostPath volumes by restricted volumes, ...), both are kept: every
// restricted override is a superset of what it replaces, so the verdict is
// the same, and a user is better told "hostPath volume (baseline)" than only
// "volume type not allowed (restricted)". pssHits drops the restricted hits
// that repeat a baseline one.
func selectPSS(level api.Level, v api.Version) []pssCheck {
	var out []pssCheck
	for _, c := range policy.DefaultChecks() {
		if c.Level == api.LevelRestricted && level != api.LevelRestricted {
			continue
		}
		var chosen *policy.VersionedCheck
		for i := range c.Versions {
			vc := &c.Versions[i]
			if v.Older(vc.MinimumVersion) {
				continue
			}
			if chosen == nil || chosen.MinimumVersion.Older(vc.MinimumVersion) {
				chosen = vc
			}
		}
		if chosen == nil {
			continue
		}
		out = append(out, pssCheck{id: c.ID, level: c.Level, fn: chosen.CheckPod, overrides: chosen.OverrideCheckIDs})
	}
	return out
}

// locator finds the fields that make a pod fail one PSS control.
type locator func(o *Object, p *PodTemplate) []Hit

var pssLocators = map[policy.CheckID]locator{
	"windowsHostProcess": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		if sc := p.Spec.SecurityContext; sc != nil && sc.WindowsOptions != nil && isTrue(sc.WindowsOptions.HostProcess) {
			hits = append(hits, Hit{Path: p.SpecPath + ".securityContext.windowsOptions.hostProcess", Message: "pod sets windowsOptions.hostProcess=true"})
		}
		for _, c := range p.Containers() {
			if sc := c.C.SecurityContext; sc != nil && sc.WindowsOptions != nil && isTrue(sc.WindowsOptions.HostProcess) {
				hits = append(hits, containerHit(c, ".securityContext.windowsOptions.hostProcess", "sets windowsOptions.hostProcess=true"))
			}
		}
		return hits
	},
	"hostNamespaces": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		for _, f := range []struct {
			name string
			on   bool
		}{{"hostNetwork", p.Spec.HostNetwork}, {"hostPID", p.Spec.HostPID}, {"hostIPC", p.Spec.HostIPC}} {
			if f.on {
				hits = append(hits, Hit{Path: p.SpecPath + "." + f.name, Message: "pod sets " + f.name + "=true"})
			}
		}
		return hits
	},
	"privileged": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		for _, c := range p.Containers() {
			if sc := c.C.SecurityContext; sc != nil && isTrue(sc.Privileged) {
				hits = append(hits, containerHit(c, ".securityContext.privileged", "runs privileged"))
			}
		}
		return hits
	},
	"capabilities_baseline": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		for _, c := range p.Containers() {
			if sc := c.C.SecurityContext; sc != nil && sc.Capabilities != nil {
				for i, cp := range sc.Capabilities.Add {
					if !baselineCapabilities[string(cp)] {
						hits = append(hits, containerHit(c, fmt.Sprintf(".securityContext.capabilities.add[%d]", i), "adds capability "+string(cp)))
					}
				}
			}
		}
		return hits
	},
	"hostPathVolumes": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		for i, v := range p.Spec.Volumes {
			if v.HostPath != nil {
				hits = append(hits, Hit{Path: fmt.Sprintf("%s.volumes[%d].hostPath", p.SpecPath, i),
					Message: fmt.Sprintf("volume %q mounts host path %s", v.Name, v.HostPath.Path)})
			}
		}
		return hits
	},
	"hostPorts": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		for _, c := range p.Containers() {
			for i, port := range c.C.Ports {
				if port.HostPort != 0 {
					hits = append(hits, containerHit(c, fmt.Sprintf(".ports[%d].hostPort", i), fmt.Sprintf("uses host port %d", port.HostPort)))
				}
			}
		}
		return hits
	},
	"appArmorProfile": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		bad := func(t corev1.AppArmorProfileType) bool {
			return t != corev1.AppArmorProfileTypeRuntimeDefault && t != corev1.AppArmorProfileTypeLocalhost
		}
		if sc := p.Spec.SecurityContext; sc != nil && sc.AppArmorProfile != nil && bad(sc.AppArmorProfile.Type) {
			hits = append(hits, Hit{Path: p.SpecPath + ".securityContext.appArmorProfile.type", Message: "pod sets AppArmor profile " + string(sc.AppArmorProfile.Type)})
		}
		for _, c := range p.Containers() {
			if sc := c.C.SecurityContext; sc != nil && sc.AppArmorProfile != nil && bad(sc.AppArmorProfile.Type) {
				hits = append(hits, containerHit(c, ".securityContext.appArmorProfile.type", "sets AppArmor profile "+string(sc.AppArmorProfile.Type)))
			}
		}
		for _, k := range sortedKeys(p.Meta.Annotations) {
			v := p.Meta.Annotations[k]
			if strings.HasPrefix(k, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) &&
				v != "" && v != corev1.DeprecatedAppArmorBetaProfileRuntimeDefault && !strings.HasPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix) {
				hits = append(hits, Hit{Path: Field(p.MetaPath+".annotations", k), Message: fmt.Sprintf("annotation %s=%s", k, v)})
			}
		}
		return hits
	},
	"seLinuxOptions": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		check := func(path, who string, opt *corev1.SELinuxOptions) {
			if opt == nil {
				return
			}
			if !allowedSELinuxTypes[opt.Type] {
				hits = append(hits, Hit{Path: path + ".type", Message: who + " sets SELinux type " + opt.Type})
			}
			if opt.User != "" {
				hits = append(hits, Hit{Path: path + ".user", Message: who + " sets SELinux user " + opt.User})
			}
			if opt.Role != "" {
				hits = append(hits, Hit{Path: path + ".role", Message: who + " sets SELinux role " + opt.Role})
			}
		}
		if sc := p.Spec.SecurityContext; sc != nil {
			check(p.SpecPath+".securityContext.seLinuxOptions", "pod", sc.SELinuxOptions)
		}
		for _, c := range p.Containers() {
			if sc := c.C.SecurityContext; sc != nil {
				check(c.Path+".securityContext.seLinuxOptions", containerWho(c), sc.SELinuxOptions)
			}
		}
		return hits
	},
	"procMount":            procMountLocator,
	"procMount_restricted": procMountLocator,
	"seccompProfile_baseline": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		if sc := p.Spec.SecurityContext; sc != nil && sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
			hits = append(hits, Hit{Path: p.SpecPath + ".securityContext.seccompProfile.type", Message: "pod sets seccomp profile Unconfined"})
		}
		for _, c := range p.Containers() {
			if sc := c.C.SecurityContext; sc != nil && sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
				hits = append(hits, containerHit(c, ".securityContext.seccompProfile.type", "sets seccomp profile Unconfined"))
			}
		}
		for _, k := range sortedKeys(p.Meta.Annotations) {
			if (k == corev1.SeccompPodAnnotationKey || strings.HasPrefix(k, corev1.SeccompContainerAnnotationKeyPrefix)) &&
				p.Meta.Annotations[k] == corev1.SeccompProfileNameUnconfined {
				hits = append(hits, Hit{Path: Field(p.MetaPath+".annotations", k), Message: "annotation " + k + "=unconfined"})
			}
		}
		return hits
	},
	"sysctls": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		if sc := p.Spec.SecurityContext; sc != nil {
			for i, s := range sc.Sysctls {
				hits = append(hits, Hit{Path: fmt.Sprintf("%s.securityContext.sysctls[%d].name", p.SpecPath, i), Message: "sets sysctl " + s.Name, sysctl: s.Name})
			}
		}
		return hits
	},
	"hostProbesAndHostLifecycle": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		for _, c := range p.Containers() {
			handlers := []struct {
				path string
				h    *corev1.ProbeHandler
			}{}
			for _, pr := range []struct {
				name string
				p    *corev1.Probe
			}{{"livenessProbe", c.C.LivenessProbe}, {"readinessProbe", c.C.ReadinessProbe}, {"startupProbe", c.C.StartupProbe}} {
				if pr.p != nil {
					handlers = append(handlers, struct {
						path string
						h    *corev1.ProbeHandler
					}{"." + pr.name, &pr.p.ProbeHandler})
				}
			}
			for _, h := range handlers {
				if h.h.HTTPGet != nil && h.h.HTTPGet.Host != "" {
					hits = append(hits, containerHit(c, h.path+".httpGet.host", "probes host "+h.h.HTTPGet.Host))
				}
				if h.h.TCPSocket != nil && h.h.TCPSocket.Host != "" {
					hits = append(hits, containerHit(c, h.path+".tcpSocket.host", "probes host "+h.h.TCPSocket.Host))
				}
			}
			if lc := c.C.Lifecycle; lc != nil {
				for _, lh := range []struct {
					name string
					h    *corev1.LifecycleHandler
				}{{"postStart", lc.PostStart}, {"preStop", lc.PreStop}} {
					if lh.h == nil {
						continue
					}
					if lh.h.HTTPGet != nil && lh.h.HTTPGet.Host != "" {
						hits = append(hits, containerHit(c, ".lifecycle."+lh.name+".httpGet.host", "lifecycle hook calls host "+lh.h.HTTPGet.Host))
					}
					if lh.h.TCPSocket != nil && lh.h.TCPSocket.Host != "" {
						hits = append(hits, containerHit(c, ".lifecycle."+lh.name+".tcpSocket.host", "lifecycle hook calls host "+lh.h.TCPSocket.Host))
					}
				}
			}
		}
		return hits
	},
	"restrictedVolumes": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		for i, v := range p.Spec.Volumes {
			vs := v.VolumeSource
			if vs.ConfigMap != nil || vs.CSI != nil || vs.DownwardAPI != nil || vs.EmptyDir != nil || vs.Ephemeral != nil ||
				vs.Image != nil || vs.PersistentVolumeClaim != nil || vs.Projected != nil || vs.Secret != nil {
				continue
			}
			hits = append(hits, Hit{Path: fmt.Sprintf("%s.volumes[%d]", p.SpecPath, i), Message: fmt.Sprintf("volume %q has a type restricted pods may not use", v.Name)})
		}
		return hits
	},
	"allowPrivilegeEscalation": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		for _, c := range p.Containers() {
			sc := c.C.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				hits = append(hits, containerHit(c, ".securityContext.allowPrivilegeEscalation", "does not set allowPrivilegeEscalation=false"))
			}
		}
		return hits
	},
	"runAsNonRoot": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		podTrue := false
		if sc := p.Spec.SecurityContext; sc != nil && sc.RunAsNonRoot != nil {
			if !*sc.RunAsNonRoot {
				hits = append(hits, Hit{Path: p.SpecPath + ".securityContext.runAsNonRoot", Message: "pod sets runAsNonRoot=false"})
			} else {
				podTrue = true
			}
		}
		for _, c := range p.Containers() {
			sc := c.C.SecurityContext
			switch {
			case sc != nil && sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
				hits = append(hits, containerHit(c, ".securityContext.runAsNonRoot", "sets runAsNonRoot=false"))
			case (sc == nil || sc.RunAsNonRoot == nil) && !podTrue:
				hits = append(hits, containerHit(c, ".securityContext.runAsNonRoot", "may run as root: neither it nor the pod sets runAsNonRoot=true"))
			}
		}
		return hits
	},
	"runAsUser": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		if sc := p.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			hits = append(hits, Hit{Path: p.SpecPath + ".securityContext.runAsUser", Message: "pod sets runAsUser=0"})
		}
		for _, c := range p.Containers() {
			if sc := c.C.SecurityContext; sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				hits = append(hits, containerHit(c, ".securityContext.runAsUser", "sets runAsUser=0"))
			}
		}
		return hits
	},
	"seccompProfile_restricted": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		ok := func(sp *corev1.SeccompProfile) bool {
			return sp != nil && (sp.Type == corev1.SeccompProfileTypeRuntimeDefault || sp.Type == corev1.SeccompProfileTypeLocalhost)
		}
		podOK := false
		if sc := p.Spec.SecurityContext; sc != nil && sc.SeccompProfile != nil {
			if ok(sc.SeccompProfile) {
				podOK = true
			} else {
				hits = append(hits, Hit{Path: p.SpecPath + ".securityContext.seccompProfile.type", Message: "pod sets seccomp profile " + string(sc.SeccompProfile.Type)})
			}
		}
		for _, c := range p.Containers() {
			sc := c.C.SecurityContext
			switch {
			case sc != nil && sc.SeccompProfile != nil && !ok(sc.SeccompProfile):
				hits = append(hits, containerHit(c, ".securityContext.seccompProfile.type", "sets seccomp profile "+string(sc.SeccompProfile.Type)))
			case (sc == nil || sc.SeccompProfile == nil) && !podOK:
				hits = append(hits, containerHit(c, ".securityContext.seccompProfile", "has no seccomp profile (RuntimeDefault or Localhost) set on it or on the pod"))
			}
		}
		return hits
	},
	"capabilities_restricted": func(o *Object, p *PodTemplate) []Hit {
		var hits []Hit
		for _, c := range p.Containers() {
			sc := c.C.SecurityContext
			var caps *corev1.Capabilities
			if sc != nil {
				caps = sc.Capabilities
			}
			dropAll := false
			if caps != nil {
				for _, d := range caps.Drop {
					if d == "ALL" {
						dropAll = true
					}
				}
			}
			if !dropAll {
				hits = append(hits, containerHit(c, ".securityContext.capabilities.drop", `does not drop ALL capabilities`))
			}
			if caps != nil {
				for i, a := range caps.Add {
					if a != "NET_BIND_SERVICE" {
						hits = append(hits, containerHit(c, fmt.Sprintf(".securityContext.capabilities.add[%d]", i), "adds capability "+string(a)))
					}
				}
			}
		}
		return hits
	},
}

func procMountLocator(o *Object, p *PodTemplate) []Hit {
	var hits []Hit
	for _, c := range p.Containers() {
		if sc := c.C.SecurityContext; sc != nil && sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			hits = append(hits, containerHit(c, ".securityContext.procMount", "sets procMount "+string(*sc.ProcMount)))
		}
	}
	return hits
}

// baselineCapabilities are the capabilities the baseline level lets a
// container add (the container runtime's defaults minus NET_RAW).
var baselineCapabilities = map[string]bool{
	"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true, "FSETID": true, "KILL": true, "MKNOD": true,
	"NET_BIND_SERVICE": true, "SETFCAP": true, "SETGID": true, "SETPCAP": true, "SETUID": true, "SYS_CHROOT": true,
}

var allowedSELinuxTypes = map[string]bool{"": true, "container_t": true, "container_init_t": true, "container_kvm_t": true, "container_engine_t": true}

func containerHit(c ContainerRef, suffix, msg string) Hit {
	return Hit{Path: c.Path + suffix, Message: containerWho(c) + " " + msg, Container: c.C.Name}
}

func containerWho(c ContainerRef) string {
	return fmt.Sprintf("%s %q", c.Type, c.C.Name)
}

func isTrue(b *bool) bool { return b != nil && *b }

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// pssHits runs the selected PSS checks on one pod and returns the hits of
// each failing one. The verdict is the admission plugin's; the locator only
// places it.
func pssHits(o *Object, checks []pssCheck) map[policy.CheckID][]Hit {
	p := o.Pod
	out := map[policy.CheckID][]Hit{}
	for _, c := range checks {
		res := c.fn(&p.Meta, &p.Spec)
		if res.Allowed {
			continue
		}
		var hits []Hit
		if loc := pssLocators[c.id]; loc != nil {
			hits = loc(o, p)
			if c.id == "sysctls" {
				hits = filterSysctls(hits, c, o)
			}
		}
		detail := res.ForbiddenReason
		if res.ForbiddenDetail != "" {
			detail += " (" + res.ForbiddenDetail + ")"
		}
		if len(hits) == 0 {
			hits = []Hit{{Path: p.SpecPath, Message: detail}}
		}
		for i := range hits {
			hits[i].Detail = detail
		}
		out[c.id] = hits
	}
	// drop restricted hits that repeat, on the same field, a hit of a
	// baseline control they override
	for _, c := range checks {
		hits := out[c.id]
		if len(c.overrides) == 0 || len(hits) == 0 {
			continue
		}
		kept := hits[:0]
		for _, h := range hits {
			dup := false
			for _, b := range c.overrides {
				for _, bh := range out[b] {
					if bh.Path != o.Pod.SpecPath && samePlace(h.Path, bh.Path) {
						dup = true
					}
				}
			}
			if !dup {
				kept = append(kept, h)
			}
		}
		if len(kept) == 0 {
			delete(out, c.id)
		} else {
			out[c.id] = kept
		}
	}
	return out
}

// samePlace says whether one field path is the other or contains it.
func samePlace(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return strings.HasPrefix(b, a) && (len(a) == len(b) || b[len(a)] == '.' || b[len(a)] == '[')
}

// filterSysctls keeps the sysctls the check itself forbids: the safe set
// grows by version, so each sysctl is asked of the check alone.
func filterSysctls(hits []Hit, c pssCheck, o *Object) []Hit {
	var kept []Hit
	for _, h := range hits {
		one := corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: h.sysctl}}}}
		if !c.fn(&o.Pod.Meta, &one).Allowed {
			kept = append(kept, h)
		}
	}
	return kept
}
