{{- define "hybridplace.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
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

{{- /* settings.namespaces (comma-separated) as a JSON list of names, blanks dropped. */ -}}
{{- define "hybridplace.watchedNamespaces" -}}
{{- $names := list -}}
{{- range splitList "," .Values.settings.namespaces -}}
{{- if trim . -}}{{- $names = append $names (trim .) -}}{{- end -}}
{{- end -}}
{{- toJson $names -}}
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
