package configs

// DefaultTemplates are the hub's messages in Chinese. A deployment overrides
// any of them under `templates:`; a key not listed here is a config error.
// Placeholders in braces are filled by the handlers.
var DefaultTemplates = map[string]string{
	"ack":                "收到，已登记为工单 #{number}。{assignee}会尽快答复您。",
	"ack_after_hours":    "现在是非工作时间，已登记为工单 #{number}，{next}会有民警答复您。如遇紧急情况请直接拨打110。",
	"faq_answer":         "【自动答复·工单 #{number}】{answer}\n如仍有疑问可继续留言，民警上班后会跟进。",
	"emergency":          "⚠️ 如有危险请立即拨打110！火情请拨119，需要急救请拨120。已通知值班民警和所领导（工单 #{number}）。",
	"officer_dm":         "### 新工单 #{number}\n- 群：{group}\n- 居民：{resident}\n- 问题：{question}\n\n回复“#{number} 内容”即在群里答复并@居民；“#{number} 认领”认领；“#{number} 转 姓名”转交；“#{number} 办结”办结。",
	"page":               "### 🚨 紧急工单 #{number}\n- 群：{group}\n- 居民：{resident}\n- 内容：{question}\n\n已提示居民拨打110，请立即处置。回复“#{number} 内容”答复。",
	"escalation_dm":      "### ⏰ 工单 #{number} 超时未答复（已升级）\n- 群：{group}\n- 居民：{resident}\n- 问题：{question}\n- 已等待：{waited}分钟\n\n回复“#{number} 内容”即在群里答复。",
	"answer":             "{answer}\n——{officer}（工单 #{number}）",
	"answered_ok":        "已在“{group}”答复工单 #{number}。",
	"claimed_ok":         "已认领工单 #{number}，请在{minutes}分钟内答复。",
	"handed_over_ok":     "工单 #{number} 已转交{officer}。",
	"handed_over_dm":     "### 工单 #{number} 由{from}转交给您\n- 群：{group}\n- 居民：{resident}\n- 问题：{question}\n\n回复“#{number} 内容”即在群里答复。",
	"closed_ok":          "工单 #{number} 已办结。",
	"duty_on":            "已开始值班，新问题会转给您。",
	"duty_off":           "已结束值班，新问题将转给其他值班人员。",
	"digest":             "### 您有 {count} 个待处理工单\n{list}\n\n回复“#编号 内容”即可答复。",
	"unknown_group":      "本群尚未登记到社区警务平台，已通知管理员处理。如有紧急情况请直接拨打110。",
	"throttled":          "您提问太频繁了，请稍等片刻；刚才的补充内容已记入工单 #{number}。",
	"unsupported":        "暂时只能识别文字消息，请用文字描述您的问题。如有紧急情况请直接拨打110。",
	"no_ticket":          "没有找到工单 #{number}，请核对编号。",
	"ticket_closed":      "工单 #{number} 已办结，不能再答复或转交。",
	"other_station":      "工单 #{number} 不属于您所在的派出所。",
	"unknown_officer":    "没有找到名为“{name}”的同事，请核对姓名。",
	"not_staff":          "这个账号没有登记为民警，不能处理工单。",
	"help":               "可用指令：\n#编号 内容 —— 在群里答复居民\n#编号 认领 —— 认领工单\n#编号 转 姓名 —— 转交给同事\n#编号 办结 —— 办结工单\n值班 开 / 值班 关 —— 开始/结束值班\n待办 —— 列出待处理工单\n帮助 —— 显示本说明\n（英文：#123 claim / #123 to 李明 / #123 close / duty on / duty off / todo / help）",
	"resident_help":      "您好，我是社区警务助手。请@我并用文字描述您的问题，我们会转给社区民警答复。紧急情况请直接拨打110。",
	"answer_undelivered": "### ⚠️ 工单 #{number} 的答复未能送达\n- 来源：{group}\n- 原因：{reason}\n\n居民没有收到这条答复，请通过电话等其他方式联系居民。",
	"empty_answer":       "答复内容不能为空：请发送“#{number} 答复内容”。",
}
