{{- define "hybridplace.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- /* The operator's metrics Service: a Service name is a DNS label, at most 63 characters
with its suffix. */ -}}
{{- define "hybridplace.metricsName" -}}
{{- printf "%s-metrics" (include "hybridplace.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- /* Values each fine alone that do not work together: refused at install, naming them. */ -}}
{{- define "hybridplace.checks" -}}
{{- if and .Values.metrics.port (eq (int .Values.metrics.port) (int .Values.livenessPort)) -}}
{{- fail (printf "metrics.port and livenessPort are both %v: the operator serves its metrics and its liveness probe on two ports (set metrics.port to another, or 0 for none)" .Values.livenessPort) -}}
{{- end -}}
{{- if and .Values.rbac.create (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) -}}
{{- fail "serviceAccount.create=false needs serviceAccount.name: without it the chart's roles would be bound to the namespace's default ServiceAccount, and so to every pod that runs as it" -}}
{{- end -}}
{{- range splitList "," .Values.settings.namespaces -}}
{{- if and (trim .) (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" (trim .))) -}}
{{- fail (printf "settings.namespaces: %q is not a namespace name (lower-case letters, digits and '-'; separate names with commas)" (trim .)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hybridplace.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hybridplace.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hybridplace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hybridplace.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* settings.namespaces (comma-separated) as a JSON list of names, blanks and repeats dropped. */ -}}
{{- define "hybridplace.watchedNamespaces" -}}
{{- $names := list -}}
{{- range splitList "," .Values.settings.namespaces -}}
{{- if trim . -}}{{- $names = append $names (trim .) -}}{{- end -}}
{{- end -}}
{{- toJson ($names | uniq) -}}
{{- end -}}

{{- /* A number setting as an environment value: a whole number as digits (Helm reads 2592000
from values.yaml as a float, which `quote` writes as "2.592e+06", and an int setting would not
parse), anything else as it is. */ -}}
{{- define "hybridplace.number" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- int64 . | quote -}}
{{- else -}}
{{- . | quote -}}
{{- end -}}
{{- end -}}
