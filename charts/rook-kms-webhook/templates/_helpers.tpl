{{/* Names, labels and checks shared by the templates. */}}

{{- define "rkw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rkw.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "rkw.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "rkw.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "rkw.controllerName" -}}
{{- printf "%s-controller" (include "rkw.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rkw.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "rkw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "rkw.webhookSelector" -}}
app.kubernetes.io/name: {{ include "rkw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "rkw.controllerSelector" -}}
app.kubernetes.io/name: {{ include "rkw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "rkw.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The Secret that holds the serving certificate. */}}
{{- define "rkw.tlsSecret" -}}
{{- if eq .Values.certs.mode "existingSecret" }}
{{- .Values.certs.existingSecret.name }}
{{- else }}
{{- printf "%s-tls" (include "rkw.fullname" .) }}
{{- end }}
{{- end }}

{{- define "rkw.caSecret" -}}
{{- printf "%s-ca" (include "rkw.fullname" .) }}
{{- end }}

{{- define "rkw.validatingName" -}}
{{- include "rkw.fullname" . }}
{{- end }}

{{- define "rkw.mutatingName" -}}
{{- include "rkw.fullname" . }}
{{- end }}

{{/* The hardened container security context. */}}
{{- define "rkw.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "rkw.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Relations between values that the schema cannot express: refuse them at render time. */}}
{{- define "rkw.checks" -}}
{{- $w := .Values.webhook }}
{{- if ge (float64 $w.requestTimeoutSeconds) (float64 $w.timeoutSeconds) }}
{{- fail (printf "webhook.requestTimeoutSeconds (%v) must be below webhook.timeoutSeconds (%v): the server must answer before the API server gives up" $w.requestTimeoutSeconds $w.timeoutSeconds) }}
{{- end }}
{{- if and (ne $w.probe.mode "off") (ge (float64 $w.probe.timeoutSeconds) (float64 $w.requestTimeoutSeconds)) }}
{{- fail (printf "webhook.probe.timeoutSeconds (%v) must be below webhook.requestTimeoutSeconds (%v)" $w.probe.timeoutSeconds $w.requestTimeoutSeconds) }}
{{- end }}
{{- if le (float64 $w.terminationGracePeriodSeconds) (addf $w.shutdownDelaySeconds $w.shutdownTimeoutSeconds) }}
{{- fail (printf "webhook.terminationGracePeriodSeconds (%v) must exceed shutdownDelaySeconds + shutdownTimeoutSeconds (%v)" $w.terminationGracePeriodSeconds (addf $w.shutdownDelaySeconds $w.shutdownTimeoutSeconds)) }}
{{- end }}
{{- if and (eq .Values.certs.mode "selfManaged") (not .Values.controller.enabled) }}
{{- fail "certs.mode selfManaged needs controller.enabled: the controller issues and rotates the serving certificate" }}
{{- end }}
{{- if and (eq .Values.certs.mode "existingSecret") (or (not .Values.certs.existingSecret.name) (not .Values.certs.existingSecret.caBundle)) }}
{{- fail "certs.mode existingSecret needs certs.existingSecret.name and certs.existingSecret.caBundle" }}
{{- end }}
{{- end }}
