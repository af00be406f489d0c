-- Argo CD health check for KServe serving.kserve.io/InferenceService.
--
-- Installed as `resource.customizations.health.serving.kserve.io_InferenceService` in argocd-cm
-- (see ../kustomization.yaml); it replaces Argo CD's built-in check for this kind. Argo CD runs it
-- in gopher-lua (Lua 5.1, no os/io) with the live object in the global `obj` and reads the
-- returned table's `status` and `message`.
--
-- Why a custom check: the dashboard must say Healthy only when KServe's own top-level Ready
-- condition is True for the spec that is in git now, so "Synced + Healthy" means the promoted
-- model version is actually serving. Sub-conditions (PredictorReady, IngressReady, ...) differ
-- between deployment modes; Ready is the one KServe rolls them up into.

local hs = { status = "Progressing", message = "Waiting for KServe to report status" }

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Being deleted"
  return hs
end

if obj.status == nil or obj.status.conditions == nil then
  return hs
end

-- A Ready=True left over from the previous spec says nothing about the version just synced.
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.message = "KServe has not yet reconciled generation " .. tostring(generation)
    .. " (status is for generation " .. tostring(observed) .. ")"
  return hs
end

local ready = nil
local stopped = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Stopped" then
    stopped = condition
  end
end

local function describe(condition)
  local text = "Ready is " .. tostring(condition.status)
  if condition.reason ~= nil and condition.reason ~= "" then
    text = text .. " (" .. condition.reason .. ")"
  end
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

-- Scaled to zero on purpose with the serving.kserve.io/stop annotation: not a failure.
if stopped ~= nil and stopped.status == "True" then
  hs.status = "Suspended"
  hs.message = "Stopped (serving.kserve.io/stop)"
  return hs
end

if ready == nil then
  hs.message = "KServe has not reported a Ready condition yet"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  if obj.status.url ~= nil and obj.status.url ~= "" then
    hs.message = "Ready at " .. obj.status.url
  else
    hs.message = "Ready"
  end
  return hs
end

if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end

-- Unknown (or anything KServe may add later): still converging.
hs.message = describe(ready)
return hs
