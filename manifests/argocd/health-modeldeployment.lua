-- Argo CD health check for ModelDeployment: keyed on the kstatus conditions the operator writes
-- (Reconciling, Stalled, Ready, Degraded), not on phase strings. Tested with a real Lua 5.1 (Argo CD
-- runs gopher-lua) on a ModelDeployment in every phase: tests/unit/test_gitops_health.py.
-- Install under resource.customizations.health.modelops.dev_ModelDeployment in argocd-cm.
local hs = {status = "Progressing", message = "waiting for the operator"}
if obj.status == nil then return hs end
-- A spec the operator has not seen yet: whatever status says is about the old spec.
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
   and obj.status.observedGeneration < obj.metadata.generation then
  return hs
end
local message = obj.status.message or ""
local ready, stalled, degraded, reconciling, reconcilingReason
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Ready" then ready = c.status end
  if c.type == "Stalled" then stalled = c.status end
  if c.type == "Degraded" then degraded = c.status end
  if c.type == "Reconciling" then reconciling = c.status; reconcilingReason = c.reason end
end
-- Stalled: the operator cannot go on without help (pods failing, canary aborted, no metrics).
if degraded == "True" or stalled == "True" then
  return {status = "Degraded", message = message}
end
if ready == "True" and reconciling ~= "True" then
  return {status = "Healthy", message = message}
end
-- Waiting for a person (a pause step without a duration, or `kubectl modelops pause`), as Argo
-- Rollouts reports a paused rollout.
if reconcilingReason == "Paused" then
  return {status = "Suspended", message = message}
end
return {status = "Progressing", message = message}
